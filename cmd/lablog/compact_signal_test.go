package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/testing/testkit"
)

// graceForNoRunWithin is the compaction.grace that, with interval iv, puts
// the next scheduled run (the next multiple of iv after now, plus grace)
// at least gap after now, so that only a trigger can run a compaction in
// between, whatever the time of day the test runs.
func graceForNoRunWithin(now time.Time, iv, gap time.Duration) time.Duration {
	g := (now.Sub(now.Truncate(iv)) + gap).Round(time.Second)
	if g >= iv {
		g -= iv // scheduled at the next multiple instead: now+gap again
	}
	return g
}

// SIGUSR1 makes `lablog run` compact now: with open hours archived and no
// scheduled run for an hour, the records published after the start-up run
// reach the archive only because of the signal.
func TestSIGUSR1CompactsNow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and signals the real binary; not in -short")
	}
	host := newTestHost(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	const interval = 24 * time.Hour
	grace := graceForNoRunWithin(time.Now(), interval, time.Hour)
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\n"+
		"compaction: {interval: %v, grace: %v, open_hours: true}\n"+
		"status: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\nstreams:\n  - {name: spin30, relay_host: %s}\n",
		filepath.Join(dir, "buffer.db"), root, interval, grace, host.URL())
	cfgPath := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// "lablog recording" comes after the SIGUSR1 handler is in place.
	cmd, log := startDaemon(t, cfgPath, "lablog recording")
	d := &daemon{url: statusURL.FindStringSubmatch(log.String())[1]}

	// The start-up run, then records that only a later run can archive.
	var startup *status.CompactionStatus
	testkit.Eventually(t, 20*time.Second, "the start-up compaction", func() bool {
		startup = d.status(t).Archive.LastCompaction
		return startup != nil
	})
	if err := host.WaitClients(t.Context(), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	const n = 20
	publishFrames(host, "spin30", n)
	testkit.Eventually(t, 20*time.Second, "every frame committed", func() bool {
		s := d.status(t)
		return len(s.Streams) == 1 && s.Streams[0].MessagesTotal == n && s.Buffer.CommittedTotal >= n+1
	})
	if c := d.status(t).Archive.LastCompaction; !c.StartedAt.Equal(startup.StartedAt) {
		t.Fatalf("a compaction at %v before the signal (start-up run at %v): the test cannot tell the signal's", c.StartedAt, startup.StartedAt)
	}
	if got := archivedMessages(t, root); got != 0 {
		t.Fatalf("%d messages archived before the signal", got)
	}

	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var run *status.CompactionStatus
	testkit.Eventually(t, 20*time.Second, "a compaction after SIGUSR1", func() bool {
		run = d.status(t).Archive.LastCompaction
		return run.StartedAt.After(signalled)
	})
	if !run.OK || run.Files != 1 || run.Records < n {
		t.Errorf("compaction after SIGUSR1: %+v, want ok, 1 file, at least %d records", run, n)
	}
	if got := archivedMessages(t, root); got != n {
		t.Errorf("%d messages archived after SIGUSR1, want %d", got, n)
	}
	if !strings.Contains(log.String(), "compaction requested by SIGUSR1") {
		t.Errorf("the log does not say why it compacted:\n%s", log)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("lablog run after SIGUSR1: %v\n%s", err, log)
	}
}

// archivedMessages verifies the archive under root and counts its message
// rows.
func archivedMessages(t *testing.T, root string) int {
	t.Helper()
	if _, problems := archive.VerifyTree(root); len(problems) > 0 {
		t.Fatalf("archive: %v", problems)
	}
	files, err := archive.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		rows, _, err := archive.ReadRows(f.Path)
		if err != nil {
			t.Fatalf("read %s: %v", f.Path, err)
		}
		for _, r := range rows {
			if r.Kind == archive.KindMessage {
				n++
			}
		}
	}
	return n
}

func TestGraceForNoRunWithin(t *testing.T) {
	day := 24 * time.Hour
	for _, now := range []time.Time{
		time.Date(2026, 12, 2, 5, 30, 0, 0, time.UTC),
		time.Date(2026, 12, 2, 23, 30, 0, 0, time.UTC), // the gap crosses midnight
		time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC),
	} {
		g := graceForNoRunWithin(now, day, time.Hour)
		if g < 0 || g >= day {
			t.Errorf("%v: grace %v out of [0, %v)", now, g, day)
		}
		next := now.Truncate(day).Add(g)
		for !next.After(now) {
			next = next.Add(day)
		}
		if wait := next.Sub(now); wait < time.Hour-time.Second || wait > time.Hour+time.Second {
			t.Errorf("%v: next run in %v, want an hour", now, wait)
		}
	}
}
