package buffer

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/frame"
)

func TestWriterCommitsEverythingQueued(t *testing.T) {
	db := openTest(t)
	w := NewWriter(db, 1<<16, nil)
	var mu sync.Mutex
	var batches []int
	w.OnCommit = func(n int, _ time.Duration) { mu.Lock(); batches = append(batches, n); mu.Unlock() }
	go w.Run()
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
	w.Stop()
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
	w := NewWriter(db, 5000, nil)
	for i := range 5000 { // queued before the writer starts: one commit
		w.Enqueue(rec("s", t0, fmt.Sprint(i)))
	}
	var sizes []int
	w.OnCommit = func(n int, _ time.Duration) { sizes = append(sizes, n) }
	go w.Run()
	w.Stop()
	if !slices.Equal(sizes, []int{5000}) {
		t.Fatalf("commit sizes %v, want one commit of 5000", sizes)
	}
}

func TestWriterCountsOverflow(t *testing.T) {
	db := openTest(t)
	w := NewWriter(db, 10, nil)
	ok := 0
	for i := range 25 {
		if w.Enqueue(rec("s", t0, fmt.Sprint(i))) {
			ok++
		}
	}
	if ok != 10 || w.Stats().Dropped != 15 {
		t.Fatalf("accepted %d, dropped %d; want 10 and 15", ok, w.Stats().Dropped)
	}
	go w.Run()
	w.Stop()
	if got := len(scanAll(t, db, "s", frame.Hour(t0))); got != 10 {
		t.Fatalf("committed %d, want the 10 accepted", got)
	}
}

func TestWriterHoldsRecordsWhileCommitsFail(t *testing.T) {
	db := openTest(t)
	w := NewWriter(db, 100, nil)
	// A record too large for MaxSize fails every commit; the writer must keep
	// it and report, and still drain the rest at Stop.
	_ = db.Close()
	small, err := Open(db.Path(), Options{MaxSize: 64 << 10, InitialMmapSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	w.db = small
	failed := make(chan error, 100)
	w.OnFailure = func(err error) { failed <- err }
	w.Enqueue(rec("s", t0, string(make([]byte, 1<<20))))
	go w.Run()
	if err := <-failed; !strings.Contains(err.Error(), "maximum") {
		t.Errorf("failure = %v, want the size limit named", err)
	}
	st := w.Stats()
	if st.Committed != 0 || st.LastError == "" {
		t.Fatalf("stats = %+v, want a reported failure", st)
	}
	w.Stop()
}
