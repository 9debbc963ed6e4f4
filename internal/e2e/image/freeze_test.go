package image

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// frozenAfter is how long a guest's console may stay silent, after its
// kernel reported a CPU stuck, before the emulated machine is taken as
// frozen. A booting guest that is only slow keeps printing: systemd shows
// its waiting jobs every second, and the initramfs's longest silence here
// is ~10 s.
const frozenAfter = 4 * time.Minute

// stuckMarkers are the kernel's words when a CPU or task made no progress
// for tens of seconds (watchdog, RCU and hung-task reports).
var stuckMarkers = []string{
	"soft lockup", "hard LOCKUP", "detected stalls on CPUs", "self-detected stall",
	"kthread starved", "blocked for more than",
}

// stuckReport is the last line of console text in which the kernel reported
// a CPU or task stuck, or "".
func stuckReport(console string) string {
	lines := strings.Split(console, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		for _, m := range stuckMarkers {
			if strings.Contains(lines[i], m) {
				return strings.TrimSpace(lines[i])
			}
		}
	}
	return ""
}

var guestTime = regexp.MustCompile(`\[ *([0-9]+\.[0-9]{6})\]`)

// lastGuestTime is the last kernel timestamp (seconds since the guest
// booted) on the console, or -1. A kernel line may follow other output on
// the same console line ("lablog login: [  57.440547] ...").
func lastGuestTime(console string) float64 {
	m := guestTime.FindAllStringSubmatch(console, -1)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
	return f
}

// quietSince is when the console last grew, as first seen by a poll, and
// QEMU's CPU seconds at that poll.
type quietSince struct {
	mtime time.Time
	cpu   float64
}

// frozen describes a frozen guest (a kernel report of a stuck CPU, then a
// console silent for frozenAfter), or returns "".
func (v *vm) frozen() string {
	fi, err := os.Stat(v.console)
	if err != nil {
		return ""
	}
	if !fi.ModTime().Equal(v.quiet.mtime) {
		v.quiet = quietSince{mtime: fi.ModTime(), cpu: v.qemuCPU()}
		return ""
	}
	silent := time.Since(fi.ModTime())
	if silent < frozenAfter {
		return ""
	}
	text := tail(v.console, 200)
	report := stuckReport(text)
	if report == "" {
		return ""
	}
	return fmt.Sprintf("its console silent for %.0f s since guest time %.0f s, after the kernel reported %q; QEMU used %.0f s of CPU since",
		silent.Seconds(), lastGuestTime(text), report, v.qemuCPU()-v.quiet.cpu)
}

// diagnosis is one line on a failed boot: how far the guest got, whether
// it went silent, what its kernel reported, what QEMU and this machine did.
// QEMU's CPU with a silent console tells a livelock (busy) from a deadlock
// (idle); steal time tells a starved host.
func (v *vm) diagnosis() string {
	text := tail(v.console, 200)
	var b strings.Builder
	fmt.Fprintf(&b, "console's last guest time %.0f s", lastGuestTime(text))
	if fi, err := os.Stat(v.console); err == nil {
		fmt.Fprintf(&b, ", silent for %.0f s", time.Since(fi.ModTime()).Seconds())
	}
	if r := stuckReport(text); r != "" {
		fmt.Fprintf(&b, "; kernel report: %q", r)
	} else {
		b.WriteString("; no kernel report of a stuck CPU")
	}
	fmt.Fprintf(&b, "; QEMU: %.0f s of CPU", v.qemuCPU())
	if !v.quiet.mtime.IsZero() {
		fmt.Fprintf(&b, ", %.0f s since the console last grew", v.qemuCPU()-v.quiet.cpu)
	}
	if v.restarted {
		b.WriteString(", restarted once after a freeze")
	}
	now := readHostCPU()
	if total := now.total - v.host.total; total > 0 {
		fmt.Fprintf(&b, "; this machine since QEMU started: %.0f%% busy, %.0f%% stolen by its hypervisor",
			100*float64(now.busy-v.host.busy)/float64(total), 100*float64(now.steal-v.host.steal)/float64(total))
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, ", load %s", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	return b.String()
}

// qemuCPU is QEMU's user and system CPU seconds so far.
func (v *vm) qemuCPU() float64 {
	select {
	case <-v.exited:
		if ps := v.cmd.ProcessState; ps != nil {
			return (ps.UserTime() + ps.SystemTime()).Seconds()
		}
		return 0
	default:
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseFloat(fields[11], 64)
	sys, _ := strconv.ParseFloat(fields[12], 64)
	return (user + sys) / 100
}

// hostCPU is this machine's CPU time from /proc/stat, in clock ticks.
type hostCPU struct{ total, busy, steal int64 }

func readHostCPU() hostCPU {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostCPU{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return hostCPU{}
	}
	var n [8]int64
	var c hostCPU
	for i := range n {
		n[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		c.total += n[i]
	}
	c.busy = c.total - n[3] - n[4]
	c.steal = n[7]
	return c
}
