package buffer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

func TestWriterCommitsEverythingQueued(t *testing.T) {
	db := openTest(t)
	var mu sync.Mutex
	var batches []int
	w := NewWriter(db, WriterOptions{Queue: 1 << 16, OnCommit: func(n int, _ time.Duration) { mu.Lock(); batches = append(batches, n); mu.Unlock() }})
	stopWriter := startWriter(t, w)
	var wg sync.WaitGroup
	for s := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if !w.Enqueue(rec(fmt.Sprintf("spin%d", 30+s), t0, fmt.Sprint(i))) {
					t.Errorf("queue full")
				}
			}
		}()
	}
	wg.Wait()
	stopWriter()
	st := w.Stats()
	if st.Committed != 12000 || st.Dropped != 0 || st.Queued != 0 {
		t.Fatalf("stats = %+v, want 12000 committed", st)
	}
	total := 0
	for _, n := range batches {
		total += n
	}
	if total != 12000 || int64(len(batches)) != st.Commits {
		t.Fatalf("commits saw %d records in %d batches, stats %+v", total, len(batches), st)
	}
	for s := range 12 {
		got := scanAll(t, db, fmt.Sprintf("spin%d", 30+s), frame.Hour(t0))
		if len(got) != 1000 {
			t.Fatalf("stream %d has %d records", s, len(got))
		}
		// Per-stream order is the order the source enqueued.
		for i, e := range got {
			if string(e.rec.Data) != fmt.Sprint(i) || e.seq != uint64(i+1) {
				t.Fatalf("stream %d #%d = seq %d %q", s, i, e.seq, e.rec.Data)
			}
		}
	}
}

func TestWriterGroupsQueuedRecords(t *testing.T) {
	db := openTest(t)
	var sizes []int
	w := NewWriter(db, WriterOptions{Queue: 5000, OnCommit: func(n int, _ time.Duration) { sizes = append(sizes, n) }})
	for i := range 5000 { // queued before the writer starts: one commit
		w.Enqueue(rec("s", t0, fmt.Sprint(i)))
	}
	stopWriter := startWriter(t, w)
	stopWriter()
	if !slices.Equal(sizes, []int{5000}) {
		t.Fatalf("commit sizes %v, want one commit of 5000", sizes)
	}
}

func TestWriterCountsOverflow(t *testing.T) {
	db := openTest(t)
	w := NewWriter(db, WriterOptions{Queue: 10})
	ok := 0
	for i := range 25 {
		if w.Enqueue(rec("s", t0, fmt.Sprint(i))) {
			ok++
		}
	}
	if ok != 10 || w.Stats().Dropped != 15 {
		t.Fatalf("accepted %d, dropped %d; want 10 and 15", ok, w.Stats().Dropped)
	}
	// Nothing takes from the queue before Run: waiting would only delay the drop.
	if n := w.Stats().Waited; n != 0 {
		t.Fatalf("waited %d times for a writer that is not running", n)
	}
	stopWriter := startWriter(t, w)
	stopWriter()
	if got := len(scanAll(t, db, "s", frame.Hour(t0))); got != 10 {
		t.Fatalf("committed %d, want the 10 accepted", got)
	}
}

// A queue far smaller than what the sources send fills at once; with the
// writer committing, every frame waits for room and none is dropped.
func TestWriterWaitsForRoomWhileCommitting(t *testing.T) {
	db := openTest(t)
	w := NewWriter(db, WriterOptions{Queue: 8, Wait: time.Minute})
	stopWriter := startWriter(t, w)
	// Once a record is committed the writer runs: the load starts then.
	done := make(chan error, 1)
	first := rec("first", t0, "x")
	first.Committed = done
	if !w.Enqueue(first) {
		t.Fatal("first record refused")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	const streams, each = 12, 500
	var wg sync.WaitGroup
	for s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if !w.Enqueue(rec(fmt.Sprintf("spin%d", 30+s), t0, fmt.Sprint(i))) {
					t.Errorf("stream %d frame %d dropped", s, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	stopWriter()
	st := w.Stats()
	if st.Committed != 1+streams*each || st.Dropped != 0 || st.Waited == 0 {
		t.Fatalf("stats = %+v, want %d committed after waits, none dropped", st, 1+streams*each)
	}
	for s := range streams {
		got := scanAll(t, db, fmt.Sprintf("spin%d", 30+s), frame.Hour(t0))
		if len(got) != each {
			t.Fatalf("stream %d has %d records, want %d", s, len(got), each)
		}
		for i, e := range got {
			if string(e.rec.Data) != fmt.Sprint(i) {
				t.Fatalf("stream %d #%d = %q: order lost", s, i, e.rec.Data)
			}
		}
	}
}

// A writer whose commits fail takes nothing from the queue: one frame waits
// out the bound and is dropped, the next ones are dropped without waiting,
// so a stuck disk does not slow every source to one frame per Wait.
func TestWriterStopsWaitingWhileCommitsFail(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "buffer.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close() // every commit fails
	failed := make(chan error, 100)
	w := NewWriter(db, WriterOptions{Queue: 2, Wait: 20 * time.Millisecond, OnFailure: func(err error) { failed <- err }})
	w.Enqueue(rec("s", t0, "held"))
	stopWriter := startWriter(t, w)
	defer stopWriter()
	<-failed // the writer holds its batch and retries: the queue is not read
	for i := range 2 {
		if !w.Enqueue(rec("s", t0, fmt.Sprint(i))) {
			t.Fatalf("frame %d refused with room in the queue", i)
		}
	}
	for i := range 5 {
		if w.Enqueue(rec("s", t0, "late")) {
			t.Fatalf("late frame %d taken by a full queue", i)
		}
	}
	if st := w.Stats(); st.Waited != 1 || st.Dropped != 5 {
		t.Fatalf("waited %d, dropped %d; want 1 wait, then 5 drops", st.Waited, st.Dropped)
	}
}

func TestWriterHoldsRecordsWhileCommitsFail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 100)
	_ = db.Close() // every commit fails, but not because the buffer is full
	w := NewWriter(db, WriterOptions{Queue: 100, OnFailure: func(err error) { failed <- err }})
	w.Enqueue(rec("s", t0, "held"))
	stopWriter := startWriter(t, w)
	if err := <-failed; !strings.Contains(err.Error(), "not open") {
		t.Errorf("failure = %v, want the cause named", err)
	}
	if err := <-failed; err == nil {
		t.Error("no retry")
	}
	st := w.Stats()
	if st.Committed != 0 || st.LastError == "" || st.Refused != 0 || st.Dropped != 0 {
		t.Fatalf("stats = %+v, want a held batch and a reported failure", st)
	}
	stopWriter()
}

// openSmall opens a buffer with a 1 MiB max_size, closed at the test's end.
func openSmall(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "buffer.db"), Options{MaxSize: 1 << 20, InitialMmapSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestWriterRefusesWhenFull(t *testing.T) {
	db := openSmall(t)
	failed := make(chan error, 100)
	committed := make(chan int, 100)
	w := NewWriter(db, WriterOptions{Queue: 1000, OnFailure: func(err error) { failed <- err }, OnCommit: func(n int, _ time.Duration) { committed <- n }})
	stopWriter := startWriter(t, w)
	defer stopWriter()
	noise := func(n int) string { // incompressible, like a full card's worth of frames
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		return string(b)
	}
	// Fill it: commits of 200 KiB until one is refused.
	var accepted int
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("a 1 MiB buffer took 4 MiB")
		}
		if !w.Enqueue(rec("s", t0, noise(200<<10))) {
			t.Fatal("refused before any commit failed")
		}
		select {
		case <-committed:
			accepted++
			continue
		case err := <-failed:
			if !IsFull(err) {
				t.Fatalf("failure %v, want the buffer full", err)
			}
		}
		break
	}
	st := w.Stats()
	if !st.Full || st.Refused != 1 || st.Dropped != 1 || st.Committed != int64(accepted) {
		t.Fatalf("stats = %+v after %d accepted, want full with 1 refused", st, accepted)
	}
	if w.Enqueue(rec("s", t0, "new")) {
		t.Fatal("a full buffer accepted a frame")
	}
	if st := w.Stats(); st.Refused != 2 {
		t.Fatalf("refused = %d, want 2", st.Refused)
	}
	// Nothing recorded before is lost, and once the hour is archived
	// (settled), frames are taken again.
	g := group(db, "s", t0)
	if n, err := records(db, g); err != nil || n != int64(accepted) {
		t.Fatalf("buffer holds %d, %v; want the %d accepted", n, err, accepted)
	}
	if _, err := db.Settle(g, 1, ^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if !w.Enqueue(rec("s", t0, "after")) {
		t.Fatal("refused after the compactor made room")
	}
	if n := <-committed; n != 1 {
		t.Fatalf("committed %d", n)
	}
	if st := w.Stats(); st.Full {
		t.Fatalf("still full: %+v", st)
	}
}

// TestWriterSpacesCommits: a lone frame is committed at once; frames that
// arrive while the last commit is under an interval old wait and go
// together, so commits are bounded whatever the traffic.
func TestWriterSpacesCommits(t *testing.T) {
	db := openTest(t)
	const interval = 150 * time.Millisecond
	type commit struct {
		n  int
		at time.Time
	}
	commits := make(chan commit, 100)
	w := NewWriter(db, WriterOptions{Queue: 1000, Interval: interval, OnCommit: func(n int, took time.Duration) { commits <- commit{n, time.Now().Add(-took)} }})
	stopWriter := startWriter(t, w)
	defer stopWriter()
	w.Enqueue(rec("s", t0, "lone"))
	first := <-commits
	for i := range 100 {
		w.Enqueue(rec("s", t0, fmt.Sprint(i)))
	}
	got, n := []commit{first}, 1
	for n < 101 {
		c := <-commits
		got = append(got, c)
		n += c.n
	}
	if len(got) > 3 {
		t.Fatalf("%d commits for a lone frame and a burst of 100: %+v", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		// Commit starts lie at least an interval apart (a lower bound:
		// a loaded machine can only make them later).
		if gap := got[i].at.Sub(got[i-1].at); gap < interval-5*time.Millisecond {
			t.Errorf("commits %d and %d started %v apart, want at least %v", i-1, i, gap, interval)
		}
	}
}

// A record that carries a Committed channel is told of its commit only
// once it is in the buffer, and of a refusal when the buffer is full;
// concurrent callers share commits.
func TestWriterTellsEachRecordItsCommit(t *testing.T) {
	db := openSmall(t)
	w := NewWriter(db, WriterOptions{Queue: 1000})
	stopWriter := startWriter(t, w)
	defer stopWriter()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				r := rec("addlog-spinner", t0, fmt.Sprintf("c%d-%d", c, i))
				done := make(chan error, 1)
				r.Committed = done
				if !w.Enqueue(r) {
					t.Error("queue full")
					return
				}
				if err := <-done; err != nil {
					t.Errorf("commit: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := scanAll(t, db, "addlog-spinner", frame.Hour(t0))
	st := w.Stats()
	if len(got) != 400 || st.Commits >= 400 {
		t.Fatalf("%d records in %d commits, want 400 in fewer commits", len(got), st.Commits)
	}
	t.Logf("400 acknowledged records from 8 callers in %d commits", st.Commits)

	// Fill the buffer: the record whose commit is refused hears why.
	noise := make([]byte, 300<<10)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("a 1 MiB buffer took 6 MiB")
		}
		r := rec("addlog-spinner", t0, string(noise))
		done := make(chan error, 1)
		r.Committed = done
		if !w.Enqueue(r) {
			t.Fatal("refused at the queue before a commit was refused")
		}
		if err := <-done; err != nil {
			if !IsFull(err) {
				t.Fatalf("refusal %v, want the buffer full", err)
			}
			break
		}
	}
}

// A commit that keeps failing is retried with a growing pause, and the
// repeated failure is logged once (then once per retrylog.Every), not at
// every retry.
func TestWriterRetriesFailedCommitsQuietly(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "buffer.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logged strings.Builder
	failed := make(chan time.Time, 100)
	_ = db.Close() // every commit fails, but not because the buffer is full
	w := NewWriter(db, WriterOptions{Queue: 100, Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil)), OnFailure: func(error) { failed <- time.Now() }})
	w.Enqueue(rec("s", t0, "held"))
	stopWriter := startWriter(t, w)
	var at []time.Time
	for range 4 {
		at = append(at, <-failed)
	}
	stopWriter()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 100*time.Millisecond {
			t.Fatalf("retry %d came %v after the failure before, want at least 100ms", i, gap)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logged.String(), "level=ERROR msg=\"commit failed"); n != 1 {
		t.Fatalf("%d ERROR lines for %d identical failures, want 1:\n%s", n, len(at), logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A batch refused for a full disk, then a commit of records queued before
// it that goes through (space came back): frames must be taken again at
// once. The writer used to clear only the disk-full flag, so every frame
// was refused until a compaction freed space (seen in make test under
// qemu: TestDiskFullShowsAsFramesRefused).
func TestWriterTakesFramesAgainAfterACommitGoesThrough(t *testing.T) {
	db := openTest(t)
	w := NewWriter(db, WriterOptions{Queue: 10})
	w.refuse([]frame.Record{rec("s", t0, "refused")}, &os.PathError{Op: "write", Path: db.Path(), Err: syscall.ENOSPC})
	if w.Enqueue(rec("s", t0, "while full")) {
		t.Fatal("a frame was taken right after the disk filled")
	}
	w.commit([]frame.Record{rec("s", t0, "queued before the refusal")}) // the writer goroutine's next batch
	if st := w.Stats(); st.Committed != 1 || st.Full || st.DiskFull {
		t.Fatalf("stats %+v after a commit went through", st)
	}
	if !w.Enqueue(rec("s", t0, "after")) {
		t.Fatal("frames still refused after a commit went through")
	}
}

// startWriter runs w until the returned stop (or the test's end): stop ends
// Run's context and waits for the drain. (testkit.Start, which imports
// this package.)
func startWriter(t testing.TB, w *Writer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("writer: %v", err)
				}
			case <-time.After(time.Minute):
				t.Errorf("writer did not drain within a minute")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
