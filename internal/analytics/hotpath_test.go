package analytics

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// The store runs beside the writer and never writes to the buffer: every
// fsync of the buffer is the writer's (two per commit, one more when the
// file grows), however often the store catches up. It sees every committed
// record exactly once, across a restart and a compaction.
func TestStoreAddsNothingToTheWritersCommits(t *testing.T) {
	recs := labFrames(5, 3000)
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	bufPath, root := filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	frames := func(s *Store) int64 {
		_, st, err := s.Graphs(nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.Frames
	}
	// run opens the store and records recs through a writer in chunks, the
	// store catching up every millisecond, and checks the buffer's fsyncs
	// against the commits. It returns the store.
	run := func(db *buffer.DB, recs []frame.Record, counted int64) *Store {
		t.Helper()
		w := buffer.NewWriter(db, buffer.WriterOptions{Queue: 1 << 16, Logger: quiet})
		store, err := OpenStore(db, Options{CatchUp: time.Millisecond, Export: time.Hour, Logger: quiet,
			Committed: func() int64 { return w.Stats().Committed }})
		if err != nil {
			t.Fatal(err)
		}
		stopWriter := testkit.Start(t, w)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = store.Run(ctx)
		}()
		before := db.Fsyncs()
		for i := 0; i < len(recs); i += 50 {
			for _, r := range recs[i:min(i+50, len(recs))] {
				if !w.Enqueue(r) {
					t.Fatal("queue full")
				}
			}
			want := counted + int64(min(i+50, len(recs)))
			testkit.Eventually(t, 10*time.Second, "the store to catch up", func() bool { return frames(store) >= want })
		}
		stopWriter()
		cancel()
		<-done
		st := w.Stats()
		fsyncs := db.Fsyncs() - before
		// bbolt grows the file a few times here: 8 fsyncs of slack.
		if st.Commits < 20 || fsyncs > 2*st.Commits+8 {
			t.Errorf("%d fsyncs of the buffer for %d commits: something besides the writer wrote to it", fsyncs, st.Commits)
		}
		if got, want := frames(store), counted+int64(len(recs)); got != want {
			t.Errorf("the store counted %d frames, want %d (each committed record once)", got, want)
		}
		return store
	}
	db, err := buffer.Open(bufPath, buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	half := len(recs) / 2
	store := run(db, recs[:half], 0)

	// A compaction of every hour, then a restart: nothing counted twice.
	comp := compactor.New(db, compactor.Options{Root: root, Require: "none", Grace: time.Minute, Logger: quiet,
		Now: func() time.Time { return recs[len(recs)-1].Received.Add(2 * time.Hour) }, BeforeSettle: store.BeforeSettle})
	if res := comp.RunOnce(context.Background()); res.Err != nil || res.Records != half {
		t.Fatalf("compaction %+v, want %d records", res, half)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = buffer.Open(bufPath, buffer.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	run(db, recs[half:], int64(half))
}

// State that older versions kept inside the buffer file is dropped at open.
func TestOpenStoreDropsTheStateInTheBuffer(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.UpdateSide(storeBucket, func(b *bolt.Bucket) error { return b.Put(keyStats, []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(db, Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if err := db.ViewSide(storeBucket, func(b *bolt.Bucket) error {
		if b != nil {
			t.Error("the old state is still in the buffer")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A store that starts empty (new, or dropped after a power cut) reads the
// archive once (Seed) and then holds what the CLI's reading of archive and
// buffer gives: the records it read from the buffer before are not
// counted again, nor the buffer's copy of archived records.
func TestSeedReadsTheArchiveOnce(t *testing.T) {
	recs := labFrames(11, 4000)
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	bufPath, root := filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := buffer.Open(bufPath, buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(db, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	first := len(recs) * 2 / 3
	if err := db.Append(recs[:first]); err != nil {
		t.Fatal(err)
	}
	comp := compactor.New(db, compactor.Options{Root: root, Require: "none", Grace: time.Minute, Logger: quiet,
		Now: func() time.Time { return recs[first-1].Received.Add(2 * time.Hour) }, BeforeSettle: store.BeforeSettle})
	if res := comp.RunOnce(context.Background()); res.Err != nil || res.Records != first {
		t.Fatalf("compaction %+v", res)
	}
	if err := db.Append(recs[first:]); err != nil {
		t.Fatal(err)
	}
	// A power cut: the store's file was open in another boot.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bufPath+".analytics.open", []byte("another boot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err = buffer.Open(bufPath, buffer.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if store, err = OpenStore(db, Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if seeded, err := store.Seeded(); err != nil || seeded {
		t.Fatalf("a store dropped after a power cut says seeded %v (%v)", seeded, err)
	}
	if _, err := store.CatchUp(); err != nil {
		t.Fatal(err)
	}
	if n, err := store.Seed(root); err != nil || n == 0 {
		t.Fatalf("seed read %d rows (%v)", n, err)
	}
	if n, err := store.Seed(root); err != nil || n != 0 {
		t.Fatalf("a second seed read %d rows (%v), want none", n, err)
	}
	if n, err := store.CatchUp(); err != nil || n != 0 {
		t.Fatalf("a catch-up after the seed consumed %d (%v), want nothing new", n, err)
	}
	live, st, err := store.Graphs(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := NewBuilder()
	held, err := want.ReadArchive(root, Window{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := want.ReadBuffer(bufPath, Window{}, held); err != nil {
		t.Fatal(err)
	}
	wantCSV, got := csvOf(t, want.Matrices()), csvOf(t, live)
	if len(got) != len(wantCSV) || len(got) < 4 {
		t.Fatalf("%d graphs, want %d", len(got), len(wantCSV))
	}
	for k, csv := range wantCSV {
		if got[k] != csv {
			t.Errorf("%v differs:\nlive:\n%s\nwant:\n%s", k, got[k], csv)
		}
	}
	ws := want.Stats
	if st.Frames != ws.Frames || st.Commands != ws.Commands || st.Messages != ws.Messages || st.GluedFrames != ws.GluedFrames ||
		st.Feedback != ws.Feedback || st.ForeignCommands != ws.ForeignCommands {
		t.Errorf("stats differ:\nlive %+v\nwant %+v", st, ws)
	}
}

// Records published but still in the buffer (a crash before the compactor
// deleted them) are counted once: from the archive by the seed, not again
// from the buffer.
func TestSeedSkipsTheBuffersCopyOfArchivedRecords(t *testing.T) {
	recs := labFrames(13, 1500)
	quiet := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	bufPath, root := filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := buffer.Open(bufPath, buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	comp := compactor.New(db, compactor.Options{Root: root, Require: "none", Grace: time.Minute, Logger: quiet,
		Now:          func() time.Time { return recs[len(recs)-1].Received.Add(2 * time.Hour) },
		BeforeSettle: func(buffer.Group, uint64) error { return errors.New("crash before the delete") }})
	_ = comp.RunOnce(context.Background()) // fails at the first delete
	if files, err := ArchiveFiles(root); err != nil || len(files) == 0 {
		t.Fatalf("%d files published (%v)", len(files), err)
	}
	store, err := OpenStore(db, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := store.Seed(root); err != nil || n == 0 {
		t.Fatalf("seed read %d rows (%v)", n, err)
	}
	if n, err := store.CatchUp(); err != nil || n != 0 {
		t.Fatalf("the catch-up consumed %d of the buffer's copies (%v), want none", n, err)
	}
	if _, st, err := store.Graphs(nil); err != nil || st.Frames != int64(len(recs)) {
		t.Fatalf("%d frames counted (%v), want %d", st.Frames, err, len(recs))
	}
}

// A consumer stuck in the middle of reading the buffer, as the store reads
// it, never holds the writer: commits go on, with two fsyncs each.
func TestAStuckReaderDoesNotHoldTheWriter(t *testing.T) {
	recs := labFrames(17, 400)
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Append(recs[:10]); err != nil {
		t.Fatal(err)
	}
	groups, err := db.Groups()
	if err != nil || len(groups) == 0 {
		t.Fatalf("%d groups (%v)", len(groups), err)
	}
	reading, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		_, err := db.Scan(groups[0], 0, ^uint64(0), func(uint64, frame.Record) error {
			if first {
				first = false
				reading <- struct{}{} // the test waits for this one
				<-release             // stuck until the writer has committed
			}
			return nil
		})
		done <- err
	}()
	<-reading
	w := buffer.NewWriter(db, buffer.WriterOptions{Queue: 1024, Logger: quiet})
	stopWriter := testkit.Start(t, w)
	before := db.Fsyncs()
	for i, r := range recs[10:] {
		if !w.Enqueue(r) {
			t.Fatal("queue full")
		}
		if i%30 == 29 {
			n := int64(i + 1)
			testkit.Eventually(t, 10*time.Second, "commits while the reader is stuck", func() bool { return w.Stats().Committed >= n })
		}
	}
	testkit.Eventually(t, 10*time.Second, "every frame committed", func() bool { return w.Stats().Committed == int64(len(recs)-10) })
	st := w.Stats()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopWriter()
	if fsyncs := db.Fsyncs() - before; st.Commits < 10 || fsyncs > 2*st.Commits+8 {
		t.Errorf("%d fsyncs for %d commits", fsyncs, st.Commits)
	}
}
