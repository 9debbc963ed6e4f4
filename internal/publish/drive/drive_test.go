package drive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture builds a fake /sys and /proc: an SD card mmcblk0 (p1 on
// /boot/firmware, p2 on /), a USB drive sda with a partition sda1, an empty
// card reader sdb, and a second USB drive sdc whose sdc1 is mounted.
func fixture(t *testing.T) *System {
	t.Helper()
	root := t.TempDir()
	sys, proc := filepath.Join(root, "sys"), filepath.Join(root, "proc")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	disk := func(name, dev, size, vendor, model string, parts map[string]string) {
		b := filepath.Join(sys, "class/block", name)
		write(filepath.Join(b, "dev"), dev+"\n")
		write(filepath.Join(b, "size"), size+"\n")
		if vendor != "" {
			write(filepath.Join(b, "device/vendor"), vendor+"  \n")
			write(filepath.Join(b, "device/model"), model+"\n")
		}
		for p, pdev := range parts {
			write(filepath.Join(b, p, "partition"), "1\n")
			write(filepath.Join(sys, "class/block", p, "dev"), pdev+"\n")
			write(filepath.Join(sys, "class/block", p, "partition"), "1\n")
		}
	}
	disk("mmcblk0", "179:0", "62333952", "", "", map[string]string{"mmcblk0p1": "179:1", "mmcblk0p2": "179:2"})
	disk("sda", "8:0", "125045424", "SanDisk", "Ultra Fit", map[string]string{"sda1": "8:1"})
	disk("sdb", "8:16", "0", "Generic", "Card Reader", nil)
	disk("sdc", "8:32", "1953525168", "WD", "Elements", map[string]string{"sdc1": "8:33"})
	write(filepath.Join(proc, "self/mountinfo"), strings.Join([]string{
		"22 1 179:2 / / rw,noatime shared:1 - ext4 /dev/mmcblk0p2 rw",
		"25 22 179:1 / /boot/firmware ro,relatime shared:2 - vfat /dev/mmcblk0p1 ro",
		"26 22 0:5 / /proc rw shared:3 - proc proc rw",
		`40 22 8:33 / /media/old\040drive rw,noatime shared:9 - ext4 /dev/sdc1 rw`,
	}, "\n")+"\n")
	return &System{Sys: sys, Proc: proc, IsBlock: func(p string) bool { return strings.HasPrefix(p, "/dev/") }}
}

func TestCheck(t *testing.T) {
	s := fixture(t)
	d, err := s.Check("/dev/sda")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "sda" || d.Bytes != 125045424*512 || d.Model != "SanDisk Ultra Fit" {
		t.Errorf("disk %+v", d)
	}
	if got := d.String(); got != "/dev/sda (64.0 GB, SanDisk Ultra Fit)" {
		t.Errorf("String = %q", got)
	}
	for dev, want := range map[string]string{
		"/dev/mmcblk0":   "SD card",
		"/dev/mmcblk0p2": "partition",
		"/dev/sda1":      "partition",
		"/dev/sdb":       "no medium",
		"/dev/sdc":       `mounted at /media/old drive`,
		"/dev/sdz":       "knows no block device",
		"/tmp/disk.img":  "not a block device",
	} {
		if _, err := s.Check(dev); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v, want an error with %q", dev, err, want)
		}
	}
}

// A USB drive the system runs from (a Pi booted from USB) is refused too.
func TestCheckRefusesSystemDisk(t *testing.T) {
	s := fixture(t)
	mi := filepath.Join(s.Proc, "self/mountinfo")
	_ = os.WriteFile(mi, []byte("22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n"), 0o644)
	if _, err := s.Check("/dev/sda"); err == nil || !strings.Contains(err.Error(), "running system") {
		t.Errorf("Check = %v, want the running system refused", err)
	}
}

func TestPartitionPath(t *testing.T) {
	for disk, want := range map[string]string{"/dev/sda": "/dev/sda1", "/dev/nvme0n1": "/dev/nvme0n1p1", "/dev/loop3": "/dev/loop3p1"} {
		if got := PartitionPath(disk); got != want {
			t.Errorf("PartitionPath(%s) = %s, want %s", disk, got, want)
		}
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	disk := Disk{Path: filepath.Join(dir, "sdx"), Name: "sdx"}
	var calls []string
	var marker []byte
	run := func(_ context.Context, stdin, name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+strings.Join(args, " "))
		switch name {
		case "sfdisk":
			if stdin != "label: gpt\n,,L\n" {
				return nil, fmt.Errorf("sfdisk script %q", stdin)
			}
			return nil, os.WriteFile(disk.Path+"1", nil, 0o644) // the kernel's new partition
		case "mke2fs":
			i := slices.Index(args, "-d")
			data, err := os.ReadFile(filepath.Join(args[i+1], ".lablog-archive"))
			marker = data
			return nil, err
		}
		return nil, nil
	}
	var log bytes.Buffer
	uid, gid := os.Getuid(), os.Getgid()
	if err := Init(context.Background(), run, disk, uid, gid, &log); err != nil {
		t.Fatalf("Init: %v\n%s", err, log.String())
	}
	if len(calls) != 5 || !strings.HasPrefix(calls[4], "debugfs -w -R set_inode_field lost+found mode 040755 "+disk.Path+"1") || !strings.HasPrefix(calls[0], "wipefs --all") || !strings.HasPrefix(calls[1], "sfdisk") ||
		!strings.HasPrefix(calls[2], "udevadm settle") {
		t.Fatalf("calls %q", calls)
	}
	mk := calls[3]
	for _, want := range []string{"-L LABLOG", "-t ext4", fmt.Sprintf("root_owner=%d:%d", uid, gid), disk.Path + "1"} {
		if !strings.Contains(mk, want) {
			t.Errorf("mke2fs %q lacks %q", mk, want)
		}
	}
	if len(marker) == 0 {
		t.Error("the filesystem was made without the archive marker")
	}

	// A failing step stops the rest.
	calls = nil
	failing := func(_ context.Context, _, name string, args ...string) ([]byte, error) {
		calls = append(calls, name)
		if name == "sfdisk" {
			return nil, fmt.Errorf("sfdisk: device busy")
		}
		return nil, nil
	}
	if err := Init(context.Background(), failing, disk, uid, gid, &log); err == nil || !strings.Contains(err.Error(), "device busy") {
		t.Errorf("Init with sfdisk failing: %v", err)
	}
	if slices.Contains(calls, "mke2fs") {
		t.Error("mke2fs ran after sfdisk failed")
	}
}
