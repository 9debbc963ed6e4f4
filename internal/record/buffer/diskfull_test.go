package buffer_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
	"github.com/practable/lablog/internal/testing/testkit/loopfs"
)

// A full file system under the buffer (ENOSPC, well below max_size) is a
// full buffer: the batch and new frames are refused and counted as such,
// the writer does not hold the batch and stall, and frames are taken again
// once space returns, with nothing committed before lost.
func TestWriterRefusesWhenTheDiskIsFull(t *testing.T) {
	dir := loopfs.Mount(t, 16<<20)
	db := testkit.OpenBuffer(t, filepath.Join(dir, "buffer.db"), buffer.Options{MaxSize: 1 << 30})
	failed := make(chan error, 100)
	committed := make(chan int, 100)
	refused := make(chan int64, 100)
	// What Stats said while the refusal was reported: the status reads
	// Stats, then the fault record, so a writer that showed itself full
	// before reporting would give a page "full" with no fault on it.
	seenAtReport := make(chan buffer.WriterStats, 100)
	var w *buffer.Writer
	w = buffer.NewWriter(db, buffer.WriterOptions{Queue: 1000, OnFailure: func(err error) { failed <- err }, OnCommit: func(n int, _ time.Duration) { committed <- n },
		OnRefused: func(n int64, _ error) { refused <- n; seenAtReport <- w.Stats() }})
	stopWriter := testkit.Start(t, w)
	defer stopWriter()
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	record := func(size int) frame.Record {
		b := make([]byte, size) // incompressible
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		return frame.Record{Stream: "spin30", Received: t0, Kind: frame.Binary, Data: b}
	}
	for range 3 {
		if !w.Enqueue(record(1 << 10)) {
			t.Fatal("refused before the disk was full")
		}
		<-committed
	}
	release := loopfs.Fill(t, dir)
	if !w.Enqueue(record(512 << 10)) {
		t.Fatal("refused before any commit failed")
	}
	select {
	case err := <-failed:
		if !buffer.IsDiskFull(err) {
			t.Fatalf("failure %v, want the disk full", err)
		}
	case n := <-committed:
		t.Fatalf("committed %d records of 512 KiB on a full file system", n)
	}
	if n := <-refused; n != 1 {
		t.Fatalf("%d refused, want the batch of 1", n)
	}
	if st := <-seenAtReport; st.Full || st.DiskFull || st.Refused != 0 {
		t.Fatalf("stats %+v while the refusal was reported: the writer showed itself full before the fault was reported", st)
	}
	st := w.Stats()
	if !st.Full || !st.DiskFull || st.Refused != 1 || st.Queued != 0 || st.Committed != 3 {
		t.Fatalf("stats %+v: want full (disk), 1 refused, nothing held, 3 committed", st)
	}
	if w.Enqueue(record(1 << 10)) {
		t.Fatal("took a frame at once after the disk filled")
	}
	release()
	var again bool
	testkit.Eventually(t, 10*buffer.DiskFullRetry, "a frame taken again once space returned", func() bool {
		again = w.Enqueue(record(1 << 10))
		return again
	})
	if n := <-committed; n != 1 {
		t.Fatalf("committed %d, want 1", n)
	}
	if st := w.Stats(); st.Full || st.DiskFull || st.Committed != 4 || st.LastError != "" {
		t.Fatalf("stats %+v after space returned", st)
	}
	stopWriter()
	// The failed commit left the file whole: it reopens (checked, not
	// quarantined) with the 4 records committed.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = testkit.OpenBuffer(t, filepath.Join(dir, "buffer.db"), buffer.Options{MaxSize: 1 << 30})
	if q := db.Quarantined(); q != "" {
		t.Fatalf("quarantined after a full disk: %s", q)
	}
	n := int64(0)
	for _, g := range mustGroups(t, db) {
		n += g.Records
	}
	if n != 4 {
		t.Fatalf("the buffer holds %d records, want the 4 committed", n)
	}
}

func mustGroups(t *testing.T, db *buffer.DB) []buffer.Group {
	t.Helper()
	gs, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	return gs
}
