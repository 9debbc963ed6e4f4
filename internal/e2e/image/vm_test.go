package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/testing/testkit"
)

// vm is one boot of the test image. Every port it forwards is on 127.0.0.1
// only, and QEMU's user network is restricted: the guest reaches nothing
// but itself.
type vm struct {
	t       *testing.T
	work    string
	boot    int
	cmd     *exec.Cmd
	pidfile string
	console string
	http    int           // guest :80, the status page
	ssh     int           // guest :22
	relay   int           // guest :8888, which the firewall must keep closed
	exited  chan struct{} // closed when QEMU has exited
	waitErr error         // its exit, once exited is closed
	control string        // the admin's shared ssh connection (ControlPath)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startVM(t *testing.T, work string, boot int) *vm {
	t.Helper()
	v := &vm{t: t, work: work, boot: boot, http: freePort(t), ssh: freePort(t), relay: freePort(t),
		pidfile: filepath.Join(work, fmt.Sprintf("qemu-%d.pid", boot)),
		console: filepath.Join(work, fmt.Sprintf("console-%d.log", boot)), exited: make(chan struct{}),
		control: filepath.Join(t.TempDir(), fmt.Sprintf("ssh-%d", boot))}
	cmdline, err := kernelCmdline(filepath.Join(work, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot %d: kernel command line %q", boot, cmdline)
	os.Remove(v.pidfile)
	fwd := fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:80,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-:8888",
		v.http, v.ssh, v.relay)
	args := []string{
		"-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
		"-nographic", "-monitor", "none", "-serial", "file:" + v.console,
		"-kernel", filepath.Join(work, "vmlinuz"), "-initrd", filepath.Join(work, "initrd.img"),
		"-append", cmdline,
		"-drive", "if=none,id=sd,format=raw,file=" + filepath.Join(work, "disk.img"),
		"-device", "virtio-blk-pci,drive=sd",
		"-drive", "if=none,id=usb,format=raw,file=" + filepath.Join(work, "archive.img"),
		"-device", "virtio-blk-pci,drive=usb",
		"-netdev", "user,id=net0,restrict=on," + fwd,
		"-device", "virtio-net-pci,netdev=net0,romfile=", // no iPXE ROM needed
		"-device", "i6300esb",
		"-pidfile", v.pidfile,
	}
	log, err := os.Create(filepath.Join(work, fmt.Sprintf("qemu-%d.log", boot)))
	if err != nil {
		t.Fatal(err)
	}
	v.cmd = exec.Command("qemu-system-aarch64", args...)
	v.cmd.Stdout, v.cmd.Stderr = log, log
	v.cmd.Stdin = nil
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.waitErr = v.cmd.Wait(); log.Close(); close(v.exited) }()
	t.Logf("boot %d: qemu started, status page on 127.0.0.1:%d, ssh on 127.0.0.1:%d", boot, v.http, v.ssh)
	t.Cleanup(func() {
		if t.Failed() && v.running() == nil {
			out, _ := v.sh("sudo journalctl -b --no-pager -n 80 -u lablog -u lablog-import-config -u lablog-labtraffic -u relay-host -u nftables")
			t.Logf("boot %d journal:\n%s", boot, out)
		}
		if err := v.kill(); err != nil {
			t.Logf("cleanup: %v", err)
		}
		if t.Failed() {
			t.Logf("boot %d console (last lines):\n%s", boot, tail(v.console, 60))
		}
	})
	return v
}

// cardCmdline reads cmdline.txt from the FAT boot partition (the first) of
// the disk image, as the Pi's firmware does at every boot.
func cardCmdline(disk string) (string, error) {
	out, err := exec.Command("partx", "-g", "-n", "1", "-o", "START", disk).Output()
	if err != nil {
		return "", fmt.Errorf("partx %s: %w", disk, err)
	}
	start, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return "", fmt.Errorf("partx %s: %q: %w", disk, out, err)
	}
	cmd := exec.Command("mtype", "-i", fmt.Sprintf("%s@@%d", disk, start*512), "::cmdline.txt")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err = cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mtype cmdline.txt: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// kernelCmdline is the card's cmdline.txt as the kernel gets it on QEMU's
// virt board: the firmware's serial0 alias becomes the PL011 UART ttyAMA0
// (as on a Pi, where the firmware substitutes the board's UART), and tty1
// goes (no display), so the console log catches everything. Two words are
// added for the emulator only: the stand-in Debian kernel would otherwise
// turn on page-table isolation (forced by KASLR) and the Spectre
// mitigations of a Cortex-A72, and every TLB flush those cost is a flush of
// QEMU's software TLB; a Pi runs its own kernel from the card.
func kernelCmdline(disk string) (string, error) {
	line, err := cardCmdline(disk)
	if err != nil {
		return "", err
	}
	var args []string
	for _, a := range strings.Fields(line) {
		switch {
		case a == "console=tty1":
			continue
		case strings.HasPrefix(a, "console=serial0"):
			a = "console=ttyAMA0" + strings.TrimPrefix(a, "console=serial0")
		}
		args = append(args, a)
	}
	args = append(args, "nokaslr", "mitigations=off")
	return strings.Join(args, " "), nil
}

// kill cuts the power: SIGKILL to the PID QEMU wrote to its -pidfile.
func (v *vm) kill() error {
	select {
	case <-v.exited:
		return nil
	default:
	}
	v.closeShared()
	data, err := os.ReadFile(v.pidfile)
	if err != nil {
		return fmt.Errorf("read pidfile: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid != v.cmd.Process.Pid {
		return fmt.Errorf("pidfile says %q, qemu is %d", data, v.cmd.Process.Pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	select {
	case <-v.exited:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("qemu %d still running 20 s after SIGKILL", pid)
	}
}

func (v *vm) running() error {
	select {
	case <-v.exited:
		return fmt.Errorf("qemu exited: %v", v.waitErr)
	default:
		return nil
	}
}

// waitFor polls check every second until it returns nil, for at most limit.
func (v *vm) waitFor(what string, limit time.Duration, check func() error) {
	v.t.Helper()
	start := time.Now()
	var err error
	// Every second, not faster: each check is a command in the emulated
	// machine, and checking takes time from the boot being watched.
	testkit.PollEvery(limit, time.Second, func() bool {
		if err = v.running(); err != nil {
			return true // qemu is gone: no use waiting
		}
		err = check()
		return err == nil
	})
	if err == nil {
		v.t.Logf("boot %d: %s after %.0f s", v.boot, what, time.Since(start).Seconds())
		return
	}
	v.t.Fatalf("boot %d: %s: not within %s: %v", v.boot, what, limit, err)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func (v *vm) get(path string) (int, []byte, error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d%s", v.http, path))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}

func (v *vm) status() (status.Snapshot, error) {
	var s status.Snapshot
	code, body, err := v.get("/api/status")
	if err != nil {
		return s, err
	}
	if code != http.StatusOK {
		return s, fmt.Errorf("/api/status: HTTP %d", code)
	}
	return s, json.Unmarshal(body, &s)
}

func (v *vm) sshArgs(key string) []string {
	return []string{"-i", filepath.Join(v.work, key), "-p", strconv.Itoa(v.ssh),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes"}
}

// sh runs a shell command in the guest as the admin user, over one shared
// connection: each new connection costs the emulated guest seconds of key
// exchange, and the checks run dozens of commands.
func (v *vm) sh(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	v.share(ctx)
	args := append(v.sshArgs("admin_key"), "-o", "ControlMaster=no", "-o", "ControlPath="+v.control,
		"labadmin@127.0.0.1", command)
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ssh %q: %w: %s", command, err, out)
	}
	return string(out), nil
}

// share starts the admin's shared connection if it is not up: ssh -f goes
// to the background once logged in, with its output on /dev/null (an
// inherited pipe would keep CombinedOutput waiting for it). Until it is up,
// sh connects on its own: ControlMaster=no uses the socket only if it is
// there.
func (v *vm) share(ctx context.Context) {
	if _, err := os.Stat(v.control); err == nil {
		return
	}
	args := append(v.sshArgs("admin_key"), "-o", "ControlMaster=yes", "-o", "ControlPersist=yes",
		"-o", "ControlPath="+v.control, "-N", "-f", "labadmin@127.0.0.1")
	_ = exec.CommandContext(ctx, "ssh", args...).Run()
}

// closeShared ends the shared connection before the guest goes away.
func (v *vm) closeShared() {
	if _, err := os.Stat(v.control); err != nil {
		return
	}
	args := append(v.sshArgs("admin_key"), "-o", "ControlPath="+v.control, "-O", "exit", "labadmin@127.0.0.1")
	_ = exec.Command("ssh", args...).Run()
}

func (v *vm) mustSh(command string) string {
	v.t.Helper()
	out, err := v.sh(command)
	if err != nil {
		v.t.Fatal(err)
	}
	return out
}

// pull copies the archive off the guest as the technician would: rsync over
// SSH as "archive", which sshd confines to rrsync -ro /media/lablog.
func (v *vm) pull(dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ssh := "ssh " + strings.Join(v.sshArgs("archive_key"), " ")
	out, err := exec.CommandContext(ctx, "rsync", "-a", "--delete", "--exclude", ".*.tmp", "--exclude", "lost+found", "-e", ssh,
		"archive@127.0.0.1:/", dst+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("rsync pull: %w: %s", err, out)
	}
	return nil
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
