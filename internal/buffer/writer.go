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
// wait on the SD card. The writer commits whatever is queued in one
// transaction (group commit), at once after a quiet spell and at most once
// per interval under load (SetInterval), so the loss window on a power cut
// is one interval plus one commit.
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
	// OnRefused, when set before Run, is told how many frames were refused
	// because the buffer was full: when a batch is refused, and at the next
	// commit for those refused at Enqueue meanwhile.
	OnRefused func(n int64)
	reported  int64 // refusals passed to OnRefused; writer goroutine only

	interval  time.Duration // least time between commit starts
	lastStart time.Time     // writer goroutine only

	dropped     atomic.Int64
	refused     atomic.Int64 // frames refused because the buffer was full
	full        atomic.Bool  // the last commit hit MaxSize
	freedAtFull atomic.Int64
	committed   atomic.Int64
	commits     atomic.Int64
	failures    atomic.Int64
	lastCommit  atomic.Int64 // Unix nanoseconds of the last successful commit
	mu          sync.Mutex
	lastErr     string
}

// NewWriter makes a writer for db with a queue of size records.
// SetInterval spaces its commits.
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

// Enqueue queues r for the next commit, taking its checksum first: from
// here to the archive its bytes are checked. It returns false, and counts
// the drop, when the queue is full, or while the buffer is full (then the
// drop is also counted as refused): the source marks the gap with an
// Overflow record once frames are accepted again.
func (w *Writer) Enqueue(r frame.Record) bool {
	r.Sum = Sum(r.Data)
	if w.full.Load() {
		if w.db.freed.Load() == w.freedAtFull.Load() {
			w.refused.Add(1)
			w.dropped.Add(1)
			return false
		}
		w.full.Store(false) // the compactor made room: try again
	}
	select {
	case w.queue <- r:
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// SetInterval sets the least time between the starts of two commits (see
// config buffer.commit_interval); call it before Run. A record that arrives
// after a quiet spell is committed at once; records arriving faster wait
// together for the next commit, so commits (two fsyncs each) are bounded
// whatever the traffic, and the loss window is at most one interval plus a
// commit.
func (w *Writer) SetInterval(d time.Duration) { w.interval = d }

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
		w.space()
		batch = w.fill(batch)
		w.lastStart = time.Now()
		w.commit(batch)
	}
}

// space waits until the last commit started an interval ago, or until a
// full batch is queued (the queue must never fill because of the wait), or
// until Stop.
func (w *Writer) space() {
	deadline := w.lastStart.Add(w.interval)
	if !time.Now().Before(deadline) {
		return
	}
	tick := time.NewTicker(min(5*time.Millisecond, w.interval))
	defer tick.Stop()
	for time.Now().Before(deadline) && len(w.queue) < maxBatch {
		select {
		case <-tick.C:
		case <-w.stop:
			return
		}
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
			w.reportRefused()
			tell(batch, nil)
			if w.OnCommit != nil {
				w.OnCommit(len(batch), took)
			}
			return
		}
		if IsFull(err) {
			// Holding the batch would stall every stream until the
			// compactor makes room: refuse it, and new frames, loudly.
			w.freedAtFull.Store(w.db.freed.Load())
			w.full.Store(true)
			w.refused.Add(int64(len(batch)))
			w.dropped.Add(int64(len(batch)))
			w.failures.Add(1)
			w.setErr(err.Error())
			w.log.Error("buffer full: refusing frames until the compactor makes room", "refused", len(batch),
				"max_size", w.db.MaxSize())
			if w.OnFailure != nil {
				w.OnFailure(err)
			}
			w.reportRefused()
			tell(batch, err)
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
			err := w.db.Append(batch)
			if err != nil {
				w.log.Error("records lost at shutdown: buffer will not commit", "records", len(batch), "err", err)
			}
			tell(batch, err)
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// tell gives each record's Committed channel, if any, the outcome of its
// commit (nil: durable).
func tell(batch []frame.Record, err error) {
	for _, r := range batch {
		if r.Committed != nil {
			r.Committed <- err
		}
	}
}

func (w *Writer) reportRefused() {
	if n := w.refused.Load(); n > w.reported {
		if w.OnRefused != nil {
			w.OnRefused(n - w.reported)
		}
		w.reported = n
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
	Refused    int64 // of Dropped, refused because the buffer was full
	Full       bool  // new frames are refused until the compactor makes room
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
		Refused:   w.refused.Load(),
		Full:      w.full.Load(),
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
