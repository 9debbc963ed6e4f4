package archive

import (
	"sync/atomic"

	"github.com/parquet-go/parquet-go"

	"github.com/practable/lablog/internal/platform/failpoint"
)

// Add hands the rows it built to the encoder once they are batchRows or
// hold batchBytes of text: enough that the hand-over costs nothing beside
// the rows' own work, little enough that two batches are a small part of
// a row group, however large the messages.
const (
	batchRows  = 256
	batchBytes = 1 << 20
)

// encoder writes rows into the Parquet file on a goroutine of its own, so
// that a compaction uses two cores: one parses frames into rows (Add), the
// other encodes columns and compresses pages, most of a compaction's CPU.
// Two batches take turns: Add fills one while the other is written, so the
// rows in flight are bounded and no batch is reused while it is written.
// The goroutine starts with the first batch and finish or abort ends it:
// until then only the goroutine touches pw.
type encoder struct {
	pw        *parquet.GenericWriter[Row]
	groupRows int // rows per row group
	inGroup   int // rows written to the current row group
	// groupBytes is the text of the current row group's rows.
	groupBytes int
	groups     int // row groups flushed so far

	todo   chan []Row    // batches to write; closed by finish
	free   chan []Row    // batches written, to be filled again
	done   chan struct{} // closed when the goroutine has returned
	skip   atomic.Bool   // set by abort: write nothing more
	failed atomic.Bool   // set once err is
	err    error         // the first write error
}

// hand gives rows to the goroutine and returns an empty batch to fill. It
// reports a write error of this batch or an earlier one, when it knows of
// one already; finish reports any.
func (e *encoder) hand(rows []Row) ([]Row, error) {
	if e.todo == nil {
		e.todo = make(chan []Row, 1)
		e.free = make(chan []Row, 2)
		e.done = make(chan struct{})
		e.free <- nil // the second batch, allocated when first filled
		go e.run()
	}
	e.todo <- rows
	next := <-e.free
	if e.failed.Load() {
		return next, e.err
	}
	return next, nil
}

func (e *encoder) run() {
	defer close(e.done)
	for rows := range e.todo {
		if e.err == nil && !e.skip.Load() {
			if err := e.write(rows); err != nil {
				e.err = err
				e.failed.Store(true)
			}
		}
		clear(rows) // drop references to the entries' strings
		e.free <- rows[:0]
	}
}

// write writes rows in pieces that end exactly on the row group's bound,
// in rows or in bytes, and flushes there, so the column buffers never hold
// more than one row group.
//
// A piece also ends where raw_bytes turns from null to set or back:
// parquet-go (v0.32.0 and v0.32.1) writes an optional []byte column of
// several rows wrongly when a set value lies between nulls (rows nil,
// [1], nil come back nil, [1], []), and the file then fails its verify.
// raw_bytes is rarely set (binary frames, text that is not UTF-8), so the
// extra pieces cost nothing measurable.
func (e *encoder) write(rows []Row) error {
	for len(rows) > 0 {
		n := 0
		for n < len(rows) && e.inGroup+n < e.groupRows && e.groupBytes < RowGroupBytes &&
			(rows[n].RawBytes == nil) == (rows[0].RawBytes == nil) {
			e.groupBytes += rows[n].textBytes()
			n++
		}
		if _, err := e.pw.Write(rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
		if e.inGroup += n; e.inGroup == e.groupRows || e.groupBytes >= RowGroupBytes {
			if err := e.pw.Flush(); err != nil {
				return err
			}
			e.inGroup, e.groupBytes = 0, 0
			if e.groups++; e.groups == 1 {
				if err := failpoint.Hit(FailMidWrite); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// finish writes rows, the last batch, waits until everything handed over
// is written and returns the first error. The encoder is done after it.
func (e *encoder) finish(rows []Row) error {
	if len(rows) > 0 {
		if _, err := e.hand(rows); err != nil {
			e.stop()
			return err
		}
	}
	e.stop()
	return e.err
}

// abort waits for the goroutine without writing what is still queued.
func (e *encoder) abort() {
	e.skip.Store(true)
	e.stop()
}

func (e *encoder) stop() {
	if e.todo != nil {
		close(e.todo)
		<-e.done
		e.todo = nil
	}
}
