package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	args      []string   // QEMU's, kept for a restart
	restarted bool       // a frozen emulator was restarted (once per boot)
	pollStart time.Time  // when the current wait began
	quiet     quietSince // when the console last grew, and QEMU's CPU then
	host      hostCPU    // this machine's CPU counters when QEMU started
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
		console: filepath.Join(work, fmt.Sprintf("console-%d.log", boot)),
		control: filepath.Join(t.TempDir(), fmt.Sprintf("ssh-%d", boot))}
	cmdline, err := kernelCmdline(filepath.Join(work, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot %d: kernel command line %q", boot, cmdline)
	fwd := fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:80,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-:8888",
		v.http, v.ssh, v.relay)
	v.args = []string{
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
	v.start()
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
			// The summary last: a CI log's excerpt is its end.
			t.Logf("boot %d console (last lines):\n%s", boot, tail(v.console, 60))
			t.Logf("boot %d: %s", boot, v.diagnosis())
		}
	})
	return v
}

// start runs QEMU with the boot's arguments (its serial console starts the
// boot's console log afresh).
func (v *vm) start() {
	t := v.t
	t.Helper()
	os.Remove(v.pidfile)
	log, err := os.OpenFile(filepath.Join(v.work, fmt.Sprintf("qemu-%d.log", v.boot)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("qemu-system-aarch64", v.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	v.cmd, v.exited, v.host = cmd, exited, readHostCPU()
	v.quiet = quietSince{}
	go func() { v.waitErr = cmd.Wait(); log.Close(); close(exited) }()
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
	if err := v.poll(limit, check, false); err != nil {
		v.t.Fatalf("boot %d: %s: not within %s: %v", v.boot, what, limit, err)
	}
	v.t.Logf("boot %d: %s after %.0f s", v.boot, what, time.Since(v.pollStart).Seconds())
}

// waitForBoot is waitFor for a boot to come up, where the emulator, not the
// image, may freeze: a guest whose kernel reported a CPU stuck and whose
// console then stayed silent for frozenAfter is taken as frozen, its power
// cut, and the boot started once more (a power cut during a boot, which the
// card must survive anyway), with the full limit again. A second freeze
// fails, as does a silent guest whose kernel reported nothing: a boot that
// hangs in the image's own services keeps its console quiet too.
func (v *vm) waitForBoot(what string, limit time.Duration, check func() error) {
	v.t.Helper()
	err := v.poll(limit, check, !v.restarted)
	if errors.Is(err, errFrozen) {
		v.t.Logf("boot %d: %v; cutting its power and booting again (once)", v.boot, err)
		v.restart()
		err = v.poll(limit, check, false)
	}
	if err != nil {
		v.t.Fatalf("boot %d: %s: not within %s: %v", v.boot, what, limit, err)
	}
	v.t.Logf("boot %d: %s after %.0f s", v.boot, what, time.Since(v.pollStart).Seconds())
}

var errFrozen = errors.New("the emulated machine froze")

// poll runs check every second, not faster: each check is a command in the
// emulated machine, and checking takes time from the boot being watched.
// It gives up early when QEMU has exited, or, with watchFreeze, when the
// guest froze.
func (v *vm) poll(limit time.Duration, check func() error, watchFreeze bool) error {
	v.pollStart = time.Now()
	var err error
	testkit.PollEvery(limit, time.Second, func() bool {
		if err = v.running(); err != nil {
			return true // qemu is gone: no use waiting
		}
		if err = check(); err == nil {
			return true
		}
		if watchFreeze {
			if report := v.frozen(); report != "" {
				err = fmt.Errorf("%w: %s", errFrozen, report)
				return true
			}
		}
		return false
	})
	return err
}

// restart cuts the power of a frozen boot and starts it again; the frozen
// run's console log is kept beside the new one.
func (v *vm) restart() {
	v.t.Helper()
	if err := v.kill(); err != nil {
		v.t.Fatal(err)
	}
	frozen := strings.TrimSuffix(v.console, ".log") + "-frozen.log"
	if err := os.Rename(v.console, frozen); err != nil {
		v.t.Fatal(err)
	}
	v.restarted = true
	v.start()
	v.t.Logf("boot %d: qemu started again (the frozen run's console: %s)", v.boot, frozen)
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
