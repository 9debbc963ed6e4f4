package archive

import (
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/practable/lablog/internal/platform/failpoint"
)

// encoder runs the Parquet writer (column encoding, zstd) on its own
// goroutine, so a compaction reads and parses the buffer on one core while
// the rows it parsed before are compressed on the other: about half the
// CPU of writing a file is each side's. The rows travel in a few reused
// batches, so what is in flight stays bounded (encoderBatches batches of
// encoderBatchRows rows, besides the row group the writer buffers).
type encoder struct {
	pw      *parquet.GenericWriter[Row]
	work    chan encodeJob
	free    chan []Row
	stopped sync.WaitGroup
	mu      sync.Mutex
	err     error // the first failure; the goroutine then drops what comes
	groups  int   // row groups flushed
	started bool
	closed  bool
}

// encodeJob is rows to write, then, when flush is set, the end of a row
// group.
type encodeJob struct {
	rows  []Row
	flush bool
}

const (
	encoderBatchRows = 256
	encoderBatches   = 3
)

func newEncoder(pw *parquet.GenericWriter[Row]) *encoder {
	e := &encoder{pw: pw, work: make(chan encodeJob, encoderBatches), free: make(chan []Row, encoderBatches)}
	for range encoderBatches {
		e.free <- make([]Row, 0, encoderBatchRows)
	}
	return e
}

// batch returns an empty batch to fill, waiting for one the goroutine has
// finished with.
func (e *encoder) batch() []Row { return <-e.free }

// send hands a batch over; the caller must not touch it afterwards.
func (e *encoder) send(rows []Row, flush bool) {
	if !e.started {
		e.started = true
		e.stopped.Add(1)
		go e.run()
	}
	e.work <- encodeJob{rows: rows, flush: flush}
}

// failed returns the goroutine's first error, if any.
func (e *encoder) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *encoder) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) run() {
	defer e.stopped.Done()
	for j := range e.work {
		if e.failed() == nil {
			e.write(j)
		}
		clear(j.rows) // drop references to the rows' strings
		e.free <- j.rows[:0]
	}
}

func (e *encoder) write(j encodeJob) {
	if _, err := e.pw.Write(j.rows); err != nil {
		e.fail(err)
		return
	}
	if !j.flush {
		return
	}
	if err := e.pw.Flush(); err != nil {
		e.fail(err)
		return
	}
	if e.groups++; e.groups == 1 {
		if err := failpoint.Hit(FailMidWrite); err != nil {
			e.fail(err)
		}
	}
}

// close waits until everything sent is written (or dropped after a
// failure) and returns the first failure. After it the Parquet writer
// belongs to the caller again. It is safe to call more than once.
func (e *encoder) close() error {
	if !e.closed {
		e.closed = true
		close(e.work)
		e.stopped.Wait()
	}
	return e.failed()
}
