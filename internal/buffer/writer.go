package buffer

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/practable/lablog/internal/frame"
)

// maxBatch bounds one commit, so a huge backlog after a stall is written in
// transactions of reasonable size.
const maxBatch = 8192

// Writer is the single goroutine that commits records to the buffer. Sources
// hand records over with Enqueue, which never blocks: the read loops must not
// wait on the SD card. The writer commits whatever is queued at once (group
// commit, no added delay), so the loss window on a power cut is one commit.
type Writer struct {
	db       *DB
	queue    chan frame.Record
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	log      *slog.Logger

	// OnCommit, when set before Run, is called after each successful commit.
	OnCommit func(records int, took time.Duration)
	// OnFailure, when set before Run, is called after each failed commit.
	OnFailure func(err error)

	dropped    atomic.Int64
	committed  atomic.Int64
	commits    atomic.Int64
	failures   atomic.Int64
	lastCommit atomic.Int64 // Unix nanoseconds of the last successful commit
	mu         sync.Mutex
	lastErr    string
}

// NewWriter makes a writer for db with a queue of size records.
func NewWriter(db *DB, size int, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.Default()
	}
	return &Writer{
		db:    db,
		queue: make(chan frame.Record, size),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		log:   log,
	}
}

// Enqueue queues r for the next commit. It returns false, and counts the
// drop, when the queue is full.
func (w *Writer) Enqueue(r frame.Record) bool {
	select {
	case w.queue <- r:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// Run commits until Stop, then commits whatever is still queued. Callers stop
// every source before calling Stop, so nothing is enqueued after the drain.
func (w *Writer) Run() {
	defer close(w.done)
	batch := make([]frame.Record, 0, maxBatch)
	for {
		select {
		case r := <-w.queue:
			batch = append(batch[:0], r)
		case <-w.stop:
			w.drain(batch[:0])
			return
		}
		batch = w.fill(batch)
		w.commit(batch)
	}
}

// fill adds what is already queued to batch, without waiting.
func (w *Writer) fill(batch []frame.Record) []frame.Record {
	for len(batch) < maxBatch {
		select {
		case r := <-w.queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (w *Writer) drain(batch []frame.Record) {
	for {
		batch = w.fill(batch[:0])
		if len(batch) == 0 {
			return
		}
		w.commit(batch)
	}
}

// commit retries a failing commit until it succeeds or the writer is
// stopped: the records are held, not dropped, while new ones queue up (and
// are counted as drops if the queue fills).
func (w *Writer) commit(batch []frame.Record) {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := w.db.Append(batch)
		if err == nil {
			took := time.Since(start)
			w.committed.Add(int64(len(batch)))
			w.commits.Add(1)
			w.lastCommit.Store(time.Now().UnixNano())
			w.setErr("")
			if w.OnCommit != nil {
				w.OnCommit(len(batch), took)
			}
			return
		}
		w.failures.Add(1)
		w.setErr(err.Error())
		w.log.Error("commit failed; holding the records and retrying", "records", len(batch), "err", err)
		if w.OnFailure != nil {
			w.OnFailure(err)
		}
		select {
		case <-time.After(backoff):
		case <-w.stop:
			// One last try at shutdown, then give up loudly.
			if err := w.db.Append(batch); err != nil {
				w.log.Error("records lost at shutdown: buffer will not commit", "records", len(batch), "err", err)
			}
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (w *Writer) setErr(s string) {
	w.mu.Lock()
	w.lastErr = s
	w.mu.Unlock()
}

// Stop ends Run after the queue is drained and waits for it.
func (w *Writer) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}

// WriterStats is a snapshot of the writer's counters.
type WriterStats struct {
	Queued     int
	QueueCap   int
	Dropped    int64
	Committed  int64 // records committed since start
	Commits    int64
	Fsyncs     int64 // fsyncs of the buffer file since it was opened
	Failures   int64
	LastCommit time.Time
	LastError  string
}

// Stats returns a snapshot; safe from any goroutine.
func (w *Writer) Stats() WriterStats {
	w.mu.Lock()
	lastErr := w.lastErr
	w.mu.Unlock()
	s := WriterStats{
		Queued:    len(w.queue),
		QueueCap:  cap(w.queue),
		Dropped:   w.dropped.Load(),
		Committed: w.committed.Load(),
		Commits:   w.commits.Load(),
		Fsyncs:    w.db.Fsyncs(),
		Failures:  w.failures.Load(),
		LastError: lastErr,
	}
	if n := w.lastCommit.Load(); n != 0 {
		s.LastCommit = time.Unix(0, n)
	}
	return s
}
