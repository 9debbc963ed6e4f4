package analytics

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// The live store, fed while frames commit, restarted, and compacted under,
// holds the matrices that the CLI's reading of archive and buffer gives,
// and those of the frames as JSON lines: nothing lost, nothing twice.
func TestStoreMatchesArchiveAndJSONL(t *testing.T) {
	recs := labFrames(3, 8000)
	var exported string
	live, liveStats, fromArchive := storeAndArchive(t, recs, func(store *Store, live []Graph, liveStats Stats) {
		exported = filepath.Join(t.TempDir(), "exported")
		if n, err := store.Export(exported); err != nil || n != len(live) {
			t.Fatalf("export wrote %d of %d (%v)", n, len(live), err)
		}
		if st, err := os.Stat(exported); err != nil || st.Mode() != archive.DirMode|fs.ModeDir {
			t.Errorf("export folder mode %v (%v), want %v", st.Mode(), err, archive.DirMode|fs.ModeDir)
		}
		if n, err := store.Export(exported); err != nil || n != 0 {
			t.Errorf("a second export wrote %d (%v), want nothing changed", n, err)
		}
		counts, err := store.Counts()
		if err != nil || counts.Graphs != len(live) || counts.Commands != liveStats.Commands || counts.Due != 0 {
			t.Errorf("counts %+v (%v), want %d graphs, %d commands", counts, err, len(live), liveStats.Commands)
		}
	})
	want := csvOf(t, fromArchive.Matrices())
	got := csvOf(t, live)
	if len(got) != len(want) || len(want) < 4 {
		t.Fatalf("%d live graphs, %d from the archive", len(got), len(want))
	}
	for k, csv := range want {
		if got[k] != csv {
			t.Errorf("%v differs:\nlive:\n%s\narchive:\n%s", k, got[k], csv)
		}
		onDrive, err := os.ReadFile(filepath.Join(exported, FileName(k, "-adjacency.csv")))
		if err != nil || string(onDrive) != csv {
			t.Errorf("%v exported %q (%v)", k, onDrive, err)
		}
		// Students' data on the archive drive: as the archive's files.
		if st, err := os.Stat(filepath.Join(exported, FileName(k, "-adjacency.csv"))); err != nil || st.Mode() != archive.FileMode {
			t.Errorf("%v exported with mode %v (%v), want %v", k, st.Mode(), err, fs.FileMode(archive.FileMode))
		}
	}
	as := fromArchive.Stats
	if liveStats.Commands != as.Commands || liveStats.Messages != as.Messages || liveStats.ForeignCommands != as.ForeignCommands ||
		liveStats.GraphsLostByRef != as.GraphsLostByRef || liveStats.Feedback != as.Feedback || liveStats.GluedFrames != as.GluedFrames {
		t.Errorf("stats differ:\nlive    %+v\narchive %+v", liveStats, as)
	}
	fromJSONL := NewBuilder()
	for _, r := range recs {
		fromJSONL.AddFrame(r.Data, r.Received.UnixMicro())
	}
	for k, csv := range csvOf(t, fromJSONL.Matrices()) {
		if got[k] != csv {
			t.Errorf("%v differs from the frames'", k)
		}
	}
	// Enjoyment is kept too.
	for _, g := range live {
		for _, w := range fromArchive.Matrices() {
			if w.Key == g.Key && Enjoyment(w.Feedback) != Enjoyment(g.Feedback) {
				t.Errorf("%v enjoyment %d, want %d", g.Key, Enjoyment(g.Feedback), Enjoyment(w.Feedback))
			}
		}
	}
}

// storeAndArchive feeds recs to a live store while they commit, with
// catch-ups, compactions and restarts between chunks, and returns the
// store's graphs and stats and a Builder that read the same records from
// the archive and the buffer. check runs on the store before it closes.
func storeAndArchive(t *testing.T, recs []frame.Record, check func(*Store, []Graph, Stats)) ([]Graph, Stats, *Builder) {
	t.Helper()
	dir := t.TempDir()
	bufPath, root := filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	var db *buffer.DB
	var store *Store
	var comp *compactor.Compactor
	var now time.Time
	open := func() {
		t.Helper()
		var err error
		if db, err = buffer.Open(bufPath, buffer.Options{Logger: quiet}); err != nil {
			t.Fatal(err)
		}
		if store, err = OpenStore(db, Options{Logger: quiet}); err != nil {
			t.Fatal(err)
		}
		comp = compactor.New(db, compactor.Options{Root: root, Require: "none", Grace: time.Minute, Logger: quiet,
			Now: func() time.Time { return now }, BeforeSettle: store.BeforeSettle})
	}
	open()
	consumed := 0
	for i, chunk := 0, 0; i < len(recs); chunk++ {
		n := 1 + (chunk*7919)%700
		batch := recs[i:min(i+n, len(recs))]
		i += len(batch)
		if err := db.Append(batch); err != nil {
			t.Fatal(err)
		}
		now = batch[len(batch)-1].Received
		switch chunk % 5 {
		case 0, 2:
			k, err := store.CatchUp()
			if err != nil {
				t.Fatal(err)
			}
			consumed += k
		case 1:
			// A compaction of every hour, the one just recorded included,
			// whose latest records the store has not seen: it must catch up
			// before they leave the buffer.
			now = now.Add(2 * time.Hour)
			if res := comp.RunOnce(context.Background()); res.Err != nil || res.Records == 0 {
				t.Fatalf("compaction %+v", res)
			}
		case 3:
			// A restart: the store goes on from its marks.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			open()
		}
	}
	if k, err := store.CatchUp(); err != nil {
		t.Fatal(err)
	} else {
		consumed += k
	}
	if k, err := store.CatchUp(); err != nil || k != 0 {
		t.Fatalf("a second catch-up consumed %d (%v), want 0", k, err)
	}
	files, _ := ArchiveFiles(root)
	if len(files) == 0 || consumed == 0 {
		t.Fatalf("%d archive files, %d records consumed by catch-ups: the test exercised nothing", len(files), consumed)
	}
	live, liveStats, err := store.Graphs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if check != nil {
		check(store, live, liveStats)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	fromArchive := NewBuilder()
	held, err := fromArchive.ReadArchive(root, Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fromArchive.ReadBuffer(bufPath, Window{}, held); err != nil {
		t.Fatal(err)
	}
	return live, liveStats, fromArchive
}

// A damaged store is dropped and counted again from the buffer's records.
func TestStoreSurvivesDamage(t *testing.T) {
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Append(labFrames(9, 500)); err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(db, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CatchUp(); err != nil {
		t.Fatal(err)
	}
	before, _, err := store.Graphs(nil)
	if err != nil || len(before) == 0 {
		t.Fatalf("%d graphs, %v", len(before), err)
	}
	store.mu.Lock()
	err = store.survive(fmt.Errorf("%w: test", buffer.ErrSideCorrupt))
	store.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if gs, _, _ := store.Graphs(nil); len(gs) != 0 {
		t.Fatalf("%d graphs after the drop, want 0", len(gs))
	}
	if n, err := store.CatchUp(); err != nil || n != 500 {
		t.Fatalf("catch-up after the drop consumed %d (%v), want all 500 records again", n, err)
	}
	after, _, err := store.Graphs(nil)
	if err != nil {
		t.Fatal(err)
	}
	want, got := csvOf(t, before), csvOf(t, after)
	if len(got) != len(want) {
		t.Fatalf("%d graphs rebuilt, %d before", len(got), len(want))
	}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("%v differs after the rebuild", k)
		}
	}
}

// Run reads the buffer on a tick only when the commit count moved: an idle
// recorder costs no work, and records committed later are consumed at the
// next tick after the count moves.
func TestRunCatchesUpOnlyWhenCommitsMoved(t *testing.T) {
	recs := labFrames(2, 400)
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var committed atomic.Int64
	store, err := OpenStore(db, Options{CatchUp: 5 * time.Millisecond, Export: time.Hour, Committed: committed.Load, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	commands := func() int64 {
		c, err := store.Counts()
		if err != nil {
			t.Fatal(err)
		}
		return c.Commands
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = store.Run(ctx)
	}()
	defer func() { cancel(); <-done }()

	half := len(recs) / 2
	// The first half spans two hours, so two groups, each consumed in its own
	// transaction: any count above zero may be the first group alone. Wait
	// for the whole half, counted by a store of its own.
	first := consumedCommands(t, recs[:half])
	if err := db.Append(recs[:half]); err != nil {
		t.Fatal(err)
	}
	if gs, err := db.Groups(); err != nil || len(gs) < 2 {
		t.Fatalf("the first half is in %d groups (%v), want several", len(gs), err)
	}
	committed.Store(int64(half))
	testkit.Eventually(t, 10*time.Second, "the first half consumed", func() bool { return commands() == first })

	// Records appended behind the counter's back stay unread while it
	// stands still (many ticks)...
	if err := db.Append(recs[half:]); err != nil {
		t.Fatal(err)
	}
	if testkit.Poll(200*time.Millisecond, func() bool { return commands() != first }) {
		t.Fatal("the store read the buffer although no commit was counted")
	}
	// ... and are consumed once it moves.
	committed.Store(int64(len(recs)))
	testkit.Eventually(t, 10*time.Second, "the second half consumed", func() bool { return commands() > first })
}

// While the writer is behind, Run consumes nothing (recording comes
// first); once it has caught up, the records waiting in the buffer are
// consumed in full.
func TestRunWaitsWhileTheWriterIsBehind(t *testing.T) {
	recs := labFrames(2, 400)
	want := consumedCommands(t, recs)
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	var behind atomic.Bool
	behind.Store(true)
	var ticks atomic.Int64
	committed := func() int64 { return ticks.Add(1) } // moves at every tick
	store, err := OpenStore(db, Options{CatchUp: 5 * time.Millisecond, Export: time.Hour, Committed: committed,
		Behind: behind.Load, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	commands := func() int64 {
		c, err := store.Counts()
		if err != nil {
			t.Fatal(err)
		}
		return c.Commands
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = store.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, 10*time.Second, "20 ticks", func() bool { return ticks.Load() >= 20 })
	if n := commands(); n != 0 {
		t.Fatalf("%d commands consumed while the writer was behind, want 0", n)
	}
	behind.Store(false)
	testkit.Eventually(t, 10*time.Second, "all consumed", func() bool { return commands() == want })
}

// A catch-up that keeps failing is retried every CatchUp, but the same
// failure is logged once (then once per retrylog.Every), not at each tick.
func TestRunLogsARunOfFailedCatchUpsOnce(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lb := &testkit.LogBuffer{}
	var ticks atomic.Int64
	committed := func() int64 { return -ticks.Add(1) } // moves at every tick
	store, err := OpenStore(db, Options{CatchUp: 5 * time.Millisecond, Export: time.Hour, Committed: committed,
		Logger: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close() // every catch-up fails from now on
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = store.Run(ctx)
	}()
	testkit.Eventually(t, 10*time.Second, "20 catch-ups", func() bool { return ticks.Load() >= 20 })
	cancel()
	<-done
	if n := strings.Count(lb.String(), "catching up failed"); n != 1 {
		t.Fatalf("%d lines for %d failed catch-ups, want 1:\n%.1500s", n, ticks.Load(), lb.String())
	}
}

// consumedCommands is the store's command count once recs are consumed.
func consumedCommands(t *testing.T, recs []frame.Record) int64 {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := OpenStore(db, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CatchUp(); err != nil {
		t.Fatal(err)
	}
	c, err := store.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return c.Commands
}
