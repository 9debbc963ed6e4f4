package main

import (
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/sdnotify/sdnotifytest"
)

// fakeSystemd listens where NOTIFY_SOCKET points.
func fakeSystemd(t *testing.T) <-chan string { return sdnotifytest.Listen(t) }

// expectNotify reads datagrams until one starts with prefix, returning the
// ones before it; the match is left in lastNote.
func expectNotify(t *testing.T, ch <-chan string, prefix string, limit time.Duration) []string {
	t.Helper()
	var before []string
	timeout := time.After(limit)
	for {
		select {
		case m := <-ch:
			if strings.HasPrefix(m, prefix) {
				lastNote = m
				return before
			}
			before = append(before, m)
		case <-timeout:
			t.Fatalf("no %q from lablog within %v; got %q", prefix, limit, before)
		}
	}
}

var lastNote string

// lablog run tells systemd READY once the buffer is open, pings the
// watchdog while the writer commits, stops pinging when commits fail (here:
// the buffer reaches its max_size), and says STOPPING at shutdown.
func TestRunNotifiesSystemd(t *testing.T) {
	notes := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "300000") // ping every 150ms, stalled after 200ms
	t.Setenv("WATCHDOG_PID", "")
	d := runInProcess(t, []string{"spin30"}, ", max_size: 1MiB", "")

	if before := expectNotify(t, notes, "READY=1\nSTATUS=recording", 10*time.Second); len(before) != 0 {
		t.Errorf("before READY: %q", before)
	}
	for i := range 3 {
		if before := expectNotify(t, notes, "WATCHDOG=1", 5*time.Second); len(before) != 0 {
			t.Errorf("before WATCHDOG %d: %q", i, before)
		}
	}

	// Fill the buffer: commits fail from then on and the writer retries.
	frame := strings.Repeat("x", 8<<10)
	for range 400 { // 3.2 MiB, well past max_size
		d.host.Publish("spin30", []byte(frame), false)
	}
	before := expectNotify(t, notes, "STATUS=writer: commits failing", 20*time.Second)
	if !strings.HasSuffix(lastNote, "database reached maximum size") {
		t.Errorf("stall status %q should give the commit error", lastNote)
	}
	for _, m := range before {
		if m != "WATCHDOG=1" {
			t.Errorf("before the stall: %q", m)
		}
	}
	// No ping while stalled: watch a few intervals, then stop lablog.
	quiet := time.After(time.Second)
	for waiting := true; waiting; {
		select {
		case m := <-notes:
			t.Errorf("while stalled, lablog sent %q", m)
		case <-quiet:
			waiting = false
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- d.shutdown() }()
	if before := expectNotify(t, notes, "STOPPING=1", 30*time.Second); len(before) != 0 {
		t.Errorf("between the stall and STOPPING: %q", before)
	}
	if err := <-stopped; err != nil {
		t.Error(err)
	}
}
