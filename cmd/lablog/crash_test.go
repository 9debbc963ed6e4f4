package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// messageID names a lab message by stream and its per-stream counter "n".
type messageID struct {
	stream string
	n      int
}

var counterRE = regexp.MustCompile(`"n": ?(\d+)`)

func idsOf(stream string, data []byte, add func(messageID)) {
	for _, m := range frame.Split(data) {
		all := counterRE.FindAllSubmatch(m.Raw, -1)
		if len(all) == 0 {
			continue
		}
		n, _ := strconv.Atoi(string(all[len(all)-1][1]))
		add(messageID{stream, n})
	}
}

// committedIDs lists the messages held by the buffer and the archive: what
// was committed before a kill. A message may be in both right after a kill
// between publish and delete; the restart repairs that.
func committedIDs(t *testing.T, bufPath, root string) map[messageID]bool {
	t.Helper()
	ids := map[messageID]bool{}
	add := func(id messageID) { ids[id] = true }
	db, err := buffer.Open(bufPath, buffer.Options{})
	if err != nil {
		t.Fatalf("buffer does not open after a kill: %v", err)
	}
	if q := db.Quarantined(); q != "" {
		t.Fatalf("buffer was corrupt after a kill (quarantined to %s)", q)
	}
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		damaged, err := db.Scan(g, 0, ^uint64(0), func(_ uint64, r frame.Record) error {
			if r.Kind == frame.Text {
				idsOf(g.Stream, r.Data, add)
			}
			return nil
		})
		if err != nil || len(damaged) > 0 {
			t.Fatalf("buffer after a kill: %v, damaged blocks %v", err, damaged)
		}
	}
	_ = db.Close()
	for id := range archivedIDs(t, root, nil) {
		ids[id] = true
	}
	return ids
}

// archivedIDs reads every published file; with counts set it also counts
// how often each message appears.
func archivedIDs(t *testing.T, root string, counts map[messageID]int) map[messageID]bool {
	t.Helper()
	ids := map[messageID]bool{}
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".parquet") {
			return nil
		}
		rows, meta, err := archive.ReadRows(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		for _, r := range rows {
			if r.Raw == nil || r.Kind != archive.KindMessage {
				continue
			}
			idsOf(meta.Stream, []byte(*r.Raw), func(id messageID) {
				ids[id] = true
				if counts != nil {
					counts[id]++
				}
			})
		}
		return nil
	})
	return ids
}

// crashConfig writes the configuration of a crash test's daemon into dir:
// a buffer and an archive of its own, the open hour compacted every second,
// quick reconnects, and names on the relay host at hostURL. archiveKeys
// adds to the archive section, sections adds whole lines.
func crashConfig(t *testing.T, dir, hostURL string, names []string, archiveKeys, sections string) (cfgPath, bufPath, root string) {
	t.Helper()
	bufPath, root = filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`buffer: {path: %s}
archive: {path: %s, require: none%s}
compaction: {interval: 1s, grace: 0s, open_hours: true, retry: 1s}
%ssources: {min_backoff: 100ms, max_backoff: 500ms}
status: {listen: "127.0.0.1:0"}
led: {path: ""}
streams:
`, bufPath, root, archiveKeys, sections)
	for _, n := range names {
		cfg += fmt.Sprintf("  - {name: %s, relay_host: %s}\n", n, hostURL)
	}
	cfgPath = filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, bufPath, root
}

// TestCrashUnderLoad SIGKILLs the real binary at random moments while it
// records and compacts, and at each named failpoint of the compaction, then
// checks that every message committed before any kill is archived exactly
// once and that every file verifies.
func TestCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; not in -short")
	}
	bin := lablogBinary(t)
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.CountOnly = true
	names := []string{"spin30", "spin31", "spin32", "pend00"}

	dir := t.TempDir()
	cfgPath, bufPath, root := crashConfig(t, dir, host.URL(), names, ", row_group_rows: 20", "")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, Rate: 300, JoinProb: 0.3, Seed: 11})
	labDone := make(chan struct{})
	labCtx, stopLab := context.WithCancel(ctx)
	go func() { defer close(labDone); _ = lab.Run(labCtx) }()

	failpoints := []string{"archive-mid-write", "archive-after-rename-before-dirsync", "compact-after-publish-before-delete"}
	rng := rand.New(rand.NewPCG(1, 2))
	committed := map[messageID]bool{}
	const kills = 24
	for i := range kills {
		cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
		cmd.Env = os.Environ()
		fp := ""
		if i%4 == 3 {
			fp = failpoints[(i/4)%len(failpoints)]
			cmd.Env = append(cmd.Env, failpoint.EnvVar+"="+fp)
		}
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("run%02d.log", i)))
		cmd.Stderr = logf
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var limit *time.Timer
		if fp == "" {
			// A random moment: sometimes mid-compaction, sometimes mid-commit.
			time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
			_ = cmd.Process.Signal(syscall.SIGKILL)
		} else {
			// The failpoint kills it at the next compaction; bound the wait.
			limit = time.AfterFunc(30*time.Second, func() {
				t.Errorf("run %d: failpoint %q not reached within 30 s", i, fp)
				_ = cmd.Process.Signal(syscall.SIGKILL)
			})
		}
		err := cmd.Wait()
		// This run's bound ends with it (deferred, it outlived the run and
		// fired on a slow machine whenever the whole test took 30 s more).
		if limit != nil {
			limit.Stop()
		}
		logf.Close()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("run %d (failpoint %q) did not die by SIGKILL: %v\n%s", i, fp, err, log)
		}
		t.Logf("run %d (failpoint %q) died after %v", i, fp, time.Since(started).Round(time.Millisecond))
		for id := range committedIDs(t, bufPath, root) {
			committed[id] = true
		}
	}
	if len(committed) < 1000 {
		t.Fatalf("only %d messages committed over %d runs: the load did not reach lablog", len(committed), kills)
	}

	// A clean run: repairs, records a little more, and stops on SIGTERM in time.
	cmd, log := startDaemon(t, cfgPath, `msg="status page"`)
	clean := &daemon{url: statusURL.FindStringSubmatch(log.String())[1]}
	testkit.Eventually(t, 30*time.Second, "the clean run to compact (repairing) and commit frames of every stream", func() bool {
		s := clean.status(t)
		if s.Archive.LastCompaction == nil || s.Buffer.CommittedTotal == 0 || len(s.Streams) != len(names) {
			return false
		}
		for _, st := range s.Streams {
			if st.MessagesTotal == 0 {
				return false
			}
		}
		return true
	})
	stopLab()
	<-labDone
	_ = cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean run after the crashes: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v, want under 5 s", took)
	}
	out, err := exec.CommandContext(ctx, bin, "compact", "--config", cfgPath, "--open-hours").CombinedOutput()
	if err != nil {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin, "verify", root).CombinedOutput()
	if err != nil {
		t.Fatalf("verify after the crashes: %v\n%s", err, out)
	}

	counts := map[messageID]int{}
	archivedIDs(t, root, counts)
	missing, dups := 0, 0
	for id := range committed {
		if counts[id] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("committed message %v is not in the archive", id)
			}
		}
	}
	for id, n := range counts {
		if n > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("message %v archived %d times", id, n)
			}
		}
	}
	t.Logf("%d kills (%d at failpoints); %d messages committed before kills, %d archived in the end; %d missing, %d duplicated",
		kills, kills/4, len(committed), len(counts), missing, dups)
}
