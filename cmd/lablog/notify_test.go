package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/testing/sdnotifytest"
	"github.com/practable/lablog/internal/testing/testkit"
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
// watchdog while the writer works, keeps pinging while a full buffer refuses
// frames (a restart would not make room; the status says FAILING), and says
// STOPPING at shutdown.
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

	// Fill the buffer with frames that do not compress, with the drive gone
	// (no marker), as when a buffer really fills: otherwise an early
	// compaction can keep making room faster than a slow machine fills it.
	if err := os.Remove(filepath.Join(d.archive, archive.MarkerFile)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 { // 3.2 MiB, well past max_size
		frame := make([]byte, 8<<10)
		for i := range frame {
			frame[i] = 'a' + byte(rng.IntN(26))
		}
		d.host.Publish("spin30", frame, false)
	}
	var last status.Snapshot
	defer func() {
		if t.Failed() {
			t.Logf("the last status: health %s, buffer %+v", last.Health, last.Buffer)
		}
	}()
	// Every frame committed or refused, at the buffer's limit. Not the
	// Full flag: a small record (an event) that still fits after the last
	// refusal commits and clears it, which under qemu's timing happened
	// in 2 runs of 18.
	testkit.Eventually(t, 20*time.Second, "the status to say the buffer is full", func() bool {
		last = d.status(t)
		b := last.Buffer
		return b.SizeBytes >= b.MaxBytes && b.RefusedTotal > 0 && b.CommittedTotal+b.RefusedTotal >= 400 && last.Health == status.HealthFailing
	})
	for i := range 3 {
		if before := expectNotify(t, notes, "WATCHDOG=1", 5*time.Second); len(before) != 0 {
			t.Errorf("while full, before WATCHDOG %d: %q", i, before)
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- d.shutdown() }()
	// The watchdog goes on being fed until shutdown begins.
	for _, m := range expectNotify(t, notes, "STOPPING=1", 30*time.Second) {
		if m != "WATCHDOG=1" {
			t.Errorf("before STOPPING: %q", m)
		}
	}
	if err := <-stopped; err != nil {
		t.Error(err)
	}
}
