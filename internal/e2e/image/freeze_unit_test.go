package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Lines as the guest's kernel prints them on its serial console.
const (
	bootLines = `[    8.476872] Run /init as init process
Loading, please wait...
[   17.511534] virtio_blk virtio0: 2/0/0 default/read/poll queues
[   19.028637] hrtimer: interrupt took 47479136 ns
`
	lockupLines = `[  205.118093] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [(udev-worker):291]
[  205.120001] Call trace:
[  227.942131]  module_sig_check+0xdc/0x160
[  227.942139]  load_module+0x44/0x23b8
[  227.942210]  el0t_64_sync+0x190/0x198
`
	stallLines = `[  253.341960] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
[  253.342313] rcu: 	(detected by 0, t=241099 jiffies, g=7897, q=1 ncpus=2)
`
)

func TestStuckReport(t *testing.T) {
	for _, c := range []struct {
		console, want string
		at            float64
	}{
		{bootLines, "", 19.028637},
		{bootLines + lockupLines, "[  205.118093] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [(udev-worker):291]", 227.942210},
		{bootLines + lockupLines + stallLines, "[  253.341960] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", 253.342313},
		{"Loading, please wait...\n", "", -1},
		{"lablog login: [   57.440547] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [zz]\n",
			"lablog login: [   57.440547] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [zz]", 57.440547},
	} {
		if got := stuckReport(c.console); got != c.want {
			t.Errorf("stuckReport(%q) = %q, want %q", c.console, got, c.want)
		}
		if got := lastGuestTime(c.console); got != c.at {
			t.Errorf("lastGuestTime(%q) = %v, want %v", c.console, got, c.at)
		}
	}
}

// TestFrozenGuest: a guest is frozen only when its kernel reported a stuck
// CPU and its console then stayed silent for frozenAfter; a silent console
// without a report (a boot hung in the image's own services) is not, nor
// is a console that grew again.
func TestFrozenGuest(t *testing.T) {
	stand := exec.Command("sleep", "600") // stands in for QEMU: a process with CPU counters
	if err := stand.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stand.Process.Kill(); stand.Wait() })
	v := &vm{t: t, console: filepath.Join(t.TempDir(), "console-1.log"), cmd: stand, exited: make(chan struct{})}
	write := func(text string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(v.console, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		mtime := time.Now().Add(-age)
		if err := os.Chtimes(v.console, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}

	write(bootLines+lockupLines, frozenAfter+time.Minute)
	if got := v.frozen(); got != "" {
		t.Fatalf("frozen at the first look at a console (its silence not yet seen): %q", got)
	}
	got := v.frozen()
	if !strings.Contains(got, "soft lockup") || !strings.Contains(got, "guest time 228 s") {
		t.Fatalf("silent after a soft lockup: frozen() = %q, want the report and its guest time", got)
	}

	write(bootLines+lockupLines+"[  230.000000] systemd[1]: Started lablog.service\n", 0)
	if got := v.frozen(); got != "" {
		t.Fatalf("the console grew again, yet frozen() = %q", got)
	}
	if got := v.frozen(); got != "" {
		t.Fatalf("the console grew again, yet frozen() = %q", got)
	}

	write(bootLines+"lablog login: \n", frozenAfter+time.Minute)
	v.frozen()
	if got := v.frozen(); got != "" {
		t.Fatalf("a silent console with no kernel report is not a frozen emulator, yet frozen() = %q", got)
	}

	if d := v.diagnosis(); !strings.Contains(d, "no kernel report of a stuck CPU") || !strings.Contains(d, "QEMU: ") {
		t.Errorf("diagnosis: %q", d)
	}
}
