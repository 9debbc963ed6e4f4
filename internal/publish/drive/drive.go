// Package drive prepares a USB drive as lablog's archive (lablog drive
// init): one GPT partition with an ext4 filesystem labelled LABLOG, whose
// root belongs to the lablog user and holds the archive marker. It refuses
// the SD card, the disk the system runs from, partitions and mounted disks.
package drive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
)

// Label is the filesystem label the appliance mounts at /media/lablog.
const Label = "LABLOG"

// Runner runs a command with stdin and returns its combined output.
type Runner func(ctx context.Context, stdin, name string, args ...string) ([]byte, error)

// ExecRunner runs commands for real.
func ExecRunner(ctx context.Context, stdin, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// System is where the facts about disks come from: the real /sys and /proc,
// or fixture folders in tests.
type System struct {
	Sys  string // default /sys
	Proc string // default /proc
	// IsBlock says whether path is a block device; default: stat.
	IsBlock func(path string) bool
}

func (s *System) defaults() {
	if s.Sys == "" {
		s.Sys = "/sys"
	}
	if s.Proc == "" {
		s.Proc = "/proc"
	}
	if s.IsBlock == nil {
		s.IsBlock = func(p string) bool {
			st, err := os.Stat(p)
			return err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
		}
	}
}

// Disk describes the device Check accepted.
type Disk struct {
	Path  string // /dev/sda
	Name  string // sda
	Bytes int64
	Model string // vendor and model, as the kernel knows them
}

func (d Disk) String() string {
	s := fmt.Sprintf("%s (%s", d.Path, humanSize(d.Bytes))
	if d.Model != "" {
		s += ", " + d.Model
	}
	return s + ")"
}

// Check tells whether device may be erased.
func (s *System) Check(device string) (Disk, error) {
	s.defaults()
	path := device
	if p, err := filepath.EvalSymlinks(device); err == nil {
		path = p // /dev/disk/by-id/... names
	}
	name := filepath.Base(path)
	d := Disk{Path: path, Name: name}
	if !s.IsBlock(path) {
		return d, fmt.Errorf("%s is not a block device", device)
	}
	block := filepath.Join(s.Sys, "class/block")
	if _, err := os.Stat(filepath.Join(block, name)); err != nil {
		return d, fmt.Errorf("%s: the kernel knows no block device %s", device, name)
	}
	if _, err := os.Stat(filepath.Join(block, name, "partition")); err == nil {
		return d, fmt.Errorf("%s is a partition: give the whole drive (e.g. /dev/sda), it gets one new partition", device)
	}
	if strings.HasPrefix(name, "mmcblk") {
		return d, fmt.Errorf("%s is an SD card (%s), not a USB drive: refusing", device, name)
	}
	mounts, err := s.mounts()
	if err != nil {
		return d, err
	}
	for dev, points := range mounts {
		if s.diskOf(dev) != name {
			continue
		}
		for _, p := range points {
			if p == "/" || p == "/boot" || p == "/boot/firmware" || p == "/usr" || p == "/var" {
				return d, fmt.Errorf("%s holds the running system (%s is mounted from %s): refusing", device, p, dev)
			}
		}
		return d, fmt.Errorf("%s is in use: %s is mounted at %s; unmount it first (sudo umount %s)",
			device, dev, strings.Join(points, ", "), points[0])
	}
	sectors, _ := readInt(filepath.Join(block, name, "size"))
	d.Bytes = sectors * 512
	if d.Bytes == 0 {
		return d, fmt.Errorf("%s has no medium (size 0)", device)
	}
	vendor := readString(filepath.Join(block, name, "device/vendor"))
	model := readString(filepath.Join(block, name, "device/model"))
	d.Model = strings.TrimSpace(vendor + " " + model)
	return d, nil
}

// mounts maps block device names to where they are mounted.
func (s *System) mounts() (map[string][]string, error) {
	f, err := os.Open(filepath.Join(s.Proc, "self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("drive: %w", err)
	}
	defer f.Close()
	byNum := s.deviceNumbers()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if dev, ok := byNum[fields[2]]; ok {
			out[dev] = append(out[dev], unescape(fields[4]))
		}
	}
	return out, sc.Err()
}

// deviceNumbers maps "major:minor" to block device names.
func (s *System) deviceNumbers() map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir(filepath.Join(s.Sys, "class/block"))
	for _, e := range entries {
		if n := readString(filepath.Join(s.Sys, "class/block", e.Name(), "dev")); n != "" {
			out[n] = e.Name()
		}
	}
	return out
}

// diskOf is the whole disk a block device belongs to (itself for a disk).
func (s *System) diskOf(dev string) string {
	block := filepath.Join(s.Sys, "class/block")
	if _, err := os.Stat(filepath.Join(block, dev, "partition")); err != nil {
		return dev
	}
	entries, _ := os.ReadDir(block)
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(block, e.Name(), dev)); err == nil {
			return e.Name()
		}
	}
	return dev
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readString(p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func readInt(p string) (int64, error) {
	return strconv.ParseInt(readString(p), 10, 64)
}

func humanSize(n int64) string {
	const gb = 1000 * 1000 * 1000
	if n >= gb {
		return fmt.Sprintf("%.1f GB", float64(n)/gb)
	}
	return fmt.Sprintf("%.0f MB", float64(n)/1e6)
}

// PartitionPath is the first partition's device: /dev/sda1, /dev/nvme0n1p1.
func PartitionPath(disk string) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return disk + "p1"
	}
	return disk + "1"
}

// Init erases disk and makes it an archive drive owned by uid:gid. The
// caller has checked it and asked for confirmation.
func Init(ctx context.Context, run Runner, disk Disk, uid, gid int, log io.Writer) error {
	if run == nil {
		run = ExecRunner
	}
	part := PartitionPath(disk.Path)
	steps := []struct {
		what, stdin, name string
		args              []string
	}{
		{"erase old signatures", "", "wipefs", []string{"--all", "--quiet", disk.Path}},
		{"one GPT partition", "label: gpt\n,,L\n", "sfdisk", []string{"--quiet", "--wipe", "always", disk.Path}},
		{"wait for the partition", "", "udevadm", []string{"settle", "--timeout=15"}},
	}
	for _, st := range steps {
		fmt.Fprintf(log, "%s: %s %s\n", st.what, st.name, strings.Join(st.args, " "))
		if _, err := run(ctx, st.stdin, st.name, st.args...); err != nil {
			return fmt.Errorf("drive init: %s: %w", st.what, err)
		}
	}
	if err := waitFor(ctx, part, 15*time.Second); err != nil {
		return err
	}
	// The filesystem is made from a folder holding the marker, so nothing
	// needs to be mounted here.
	dir, err := os.MkdirTemp("", "lablog-drive-")
	if err != nil {
		return fmt.Errorf("drive init: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := archive.WriteMarker(dir, uid, gid); err != nil {
		return fmt.Errorf("drive init: %w", err)
	}
	args := []string{"-F", "-q", "-t", "ext4", "-L", Label, "-m", "0",
		"-E", fmt.Sprintf("root_owner=%d:%d", uid, gid), "-d", dir, part}
	fmt.Fprintf(log, "ext4 labelled %s: mke2fs %s\n", Label, strings.Join(args, " "))
	if _, err := run(ctx, "", "mke2fs", args...); err != nil {
		return fmt.Errorf("drive init: make the filesystem: %w", err)
	}
	// lost+found is root's and 0700: lablog (temp file cleanup walks the
	// archive) and rsync over the read-only archive account must be able to
	// read it.
	fmt.Fprintf(log, "lost+found readable: debugfs -w -R 'set_inode_field lost+found mode 040755' %s\n", part)
	if _, err := run(ctx, "", "debugfs", "-w", "-R", "set_inode_field lost+found mode 040755", part); err != nil {
		return fmt.Errorf("drive init: lost+found: %w", err)
	}
	return nil
}

var errTimeout = errors.New("timed out")

// waitFor waits, within limit, until path exists.
func waitFor(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drive init: %s did not appear within %s: %w", path, limit, errTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
