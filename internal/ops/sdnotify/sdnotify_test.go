package sdnotify

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/sdnotifytest"
)

// listen makes a fake systemd notify socket and points NOTIFY_SOCKET at it.
func listen(t *testing.T) <-chan string { return sdnotifytest.Listen(t) }

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
		return ""
	}
}

func TestReadyAndStopping(t *testing.T) {
	ch := listen(t)
	var n Notifier
	n.Ready()
	if m := next(t, ch); m != "READY=1\nSTATUS=recording" {
		t.Errorf("ready sent %q", m)
	}
	n.Stopping()
	if m := next(t, ch); !strings.HasPrefix(m, "STOPPING=1\n") {
		t.Errorf("stopping sent %q", m)
	}
}

func TestInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := Interval(); d != 30*time.Second {
		t.Errorf("Interval = %v, want 30s", d)
	}
	t.Setenv("WATCHDOG_USEC", "")
	if d := Interval(); d != 0 {
		t.Errorf("Interval without WATCHDOG_USEC = %v, want 0", d)
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "1") // for another process
	if d := Interval(); d != 0 {
		t.Errorf("Interval for another pid = %v, want 0", d)
	}
}

// Pings follow the check exactly: one per healthy check, none while it
// fails, a STATUS line at each change.
func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	ch := listen(t)
	// Healthy 3 times, failing 5 times, healthy again until stopped.
	var mu sync.Mutex
	checks := 0
	reachedEnd := make(chan struct{})
	check := func(time.Time) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		checks++
		if checks == 12 {
			close(reachedEnd)
		}
		if checks > 3 && checks <= 8 {
			return false, "writer: stuck"
		}
		return true, ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Notifier{}.Watchdog(ctx, 20*time.Millisecond, check)
	}()
	<-reachedEnd
	cancel()
	<-done
	Notifier{}.Stopping() // a sentinel: everything before it has arrived

	var got []string
	for {
		m := next(t, ch)
		if strings.HasPrefix(m, "STOPPING=1") {
			break
		}
		got = append(got, m)
	}
	mu.Lock()
	total := checks
	mu.Unlock()
	want := []string{"WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1", "STATUS=writer: stuck", "STATUS=recording"}
	for range total - 8 {
		want = append(want, "WATCHDOG=1")
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after %d checks got\n%q\nwant\n%q", total, got, want)
	}
}

func TestWatchdogOff(t *testing.T) {
	called := false
	Notifier{}.Watchdog(context.Background(), 0, func(time.Time) (bool, string) { called = true; return true, "" })
	if called {
		t.Error("check called with the watchdog off")
	}
}
