package analytics

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/compactor"
	"github.com/practable/lablog/internal/frame"
	"github.com/practable/lablog/internal/testkit"
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
	// run records recs through a writer in chunks, the store catching up
	// every millisecond, and checks the buffer's fsyncs against the commits.
	run := func(db *buffer.DB, store *Store, recs []frame.Record, counted int64) {
		t.Helper()
		w := buffer.NewWriter(db, 1<<16, quiet)
		go w.Run()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			store.Run(ctx, RunOptions{CatchUp: time.Millisecond, Export: time.Hour, Committed: func() int64 { return w.Stats().Committed }})
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
		w.Stop()
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
	}
	db, err := buffer.Open(bufPath, buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(db, quiet)
	if err != nil {
		t.Fatal(err)
	}
	half := len(recs) / 2
	run(db, store, recs[:half], 0)

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
	if store, err = OpenStore(db, quiet); err != nil {
		t.Fatal(err)
	}
	run(db, store, recs[half:], int64(half))
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
	if _, err := OpenStore(db, quiet); err != nil {
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
