package buffer

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/retrylog"
	"github.com/practable/lablog/internal/record/frame"
)

// maxBatch bounds one commit, so a huge backlog after a stall is written in
// transactions of reasonable size.
const maxBatch = 8192

// Writer is the single goroutine that commits records to the buffer. Sources
// hand records over with Enqueue, which waits only for room in a full queue
// while commits go through, and then at most WriterOptions.Wait: the read
// loops must not wait on a stuck SD card. The writer commits whatever is queued in one
// transaction (group commit), at once after a quiet spell and at most once
// per interval under load (WriterOptions.Interval), so the loss window on
// a power cut is one interval plus one commit.
type Writer struct {
	db    *DB
	queue chan frame.Record
	opts  WriterOptions
	log   *slog.Logger
	// stop is Run's ctx.Done(); set before Run's loop, read only by it.
	stop <-chan struct{}

	reported int64 // refusals passed to OnRefused; writer goroutine only

	// Writer goroutine only.
	fullWhy  error        // why frames were last refused
	refusals retrylog.Run // the current run of refused batches, for the log
	failing  retrylog.Run // the current run of failed commits, for the log

	lastStart time.Time // writer goroutine only

	// running is set while Run's loop takes records: only then is there
	// any point in Enqueue waiting for room.
	running atomic.Bool
	// stalledAt is the commit count when a wait for room last timed out:
	// Enqueue waits again only once a commit has gone through since, so
	// a stuck writer costs each source one wait, not one per frame.
	stalledAt   atomic.Int64
	waited      atomic.Int64 // frames that found the queue full and waited for room
	dropped     atomic.Int64
	refused     atomic.Int64 // frames refused because the buffer was full
	full        atomic.Bool  // the last commit hit MaxSize or a full disk: refuse frames
	diskFull    atomic.Bool  // the last commit hit a full disk
	retryAt     atomic.Int64 // Unix nanoseconds: with a full disk, try a commit again from then
	freedAtFull atomic.Int64
	committed   atomic.Int64
	commits     atomic.Int64
	failures    atomic.Int64
	lastCommit  atomic.Int64 // Unix nanoseconds of the last successful commit
	mu          sync.Mutex
	lastErr     string
}

// WriterOptions configure a Writer. The callbacks are called on the
// writer's goroutine, so they must be quick.
type WriterOptions struct {
	// Queue is how many records may wait for a commit; default
	// DefaultQueue.
	Queue int
	// Wait is how long Enqueue may wait for room when the queue is full
	// and the writer is committing; default DefaultWait, negative: never
	// wait. A full queue then slows the sources to the writer's pace
	// instead of dropping frames; a wait that times out drops the frame,
	// and no frame waits again until a commit goes through.
	Wait time.Duration
	// Interval is the least time between the starts of two commits (config
	// buffer.commit_interval). A record that arrives after a quiet spell is
	// committed at once; records arriving faster wait together for the
	// next commit, so commits (two fsyncs each) are bounded whatever the
	// traffic, and the loss window is at most one interval plus a commit.
	Interval time.Duration
	// OnCommit, when set, is called after each successful commit.
	OnCommit func(records int, took time.Duration)
	// OnFailure, when set, is called after each failed commit.
	OnFailure func(err error)
	// OnRefused, when set, is told how many frames were refused because
	// the buffer was full, and why (see IsFull, IsDiskFull): when a batch
	// is refused, and at the next commit for those refused at Enqueue
	// meanwhile.
	OnRefused func(n int64, why error)
	// Logger is where the writer logs; nil: slog.Default().
	Logger *slog.Logger
}

// NewWriter makes a writer for db. Enqueue may be called at once; Run
// commits.
func NewWriter(db *DB, o WriterOptions) *Writer {
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{
		db:    db,
		queue: make(chan frame.Record, o.Queue),
		opts:  o,
		log:   log,
		// Losing frames is an error, however often it is said.
		refusals: retrylog.Run{Level: slog.LevelError},
		failing:  retrylog.Run{Level: slog.LevelError},
	}
	w.stalledAt.Store(-1)
	return w
}

// DefaultWait bounds Enqueue's wait for room in a full queue: several
// commits of a slow SD card (one takes 30-100 ms), so a burst beyond the
// writer's pace is held back rather than dropped, while a writer stuck on a
// failing disk costs a source at most this once.
const DefaultWait = time.Second

// DiskFullRetry is how long frames are refused after a commit met a full
// disk before a commit is tried again: space may come back without the
// compactor (a file deleted), and one failed commit per period costs little.
const DiskFullRetry = 2 * time.Second

// Enqueue queues r for the next commit, taking its checksum first: from
// here to the archive its bytes are checked. When the queue is full while
// the writer commits, it waits for room (at most WriterOptions.Wait). It
// returns false, and counts the drop, when there is no room after that, or
// while the buffer is full (then the drop is also counted as refused): the
// source marks the gap with an Overflow record once frames are accepted
// again.
func (w *Writer) Enqueue(r frame.Record) bool {
	r.Sum = Sum(r.Data)
	if w.full.Load() {
		retry := w.diskFull.Load() && time.Now().UnixNano() >= w.retryAt.Load()
		if w.db.freed.Load() == w.freedAtFull.Load() && !retry {
			w.refused.Add(1)
			w.dropped.Add(1)
			return false
		}
		w.full.Store(false) // the compactor made room, or space may be back: try again
	}
	select {
	case w.queue <- r:
		return true
	default:
	}
	if w.wait(r) {
		return true
	}
	w.dropped.Add(1)
	return false
}

// wait puts r in the full queue once the writer makes room, unless the
// writer is not running, has not committed since a wait last timed out, or
// takes longer than the Wait option.
func (w *Writer) wait(r frame.Record) bool {
	if w.opts.Wait < 0 || !w.running.Load() || w.stalledAt.Load() == w.commits.Load() {
		return false
	}
	w.waited.Add(1)
	t := time.NewTimer(w.opts.Wait)
	defer t.Stop()
	select {
	case w.queue <- r:
		return true
	case <-t.C:
		w.stalledAt.Store(w.commits.Load())
		return false
	}
}

// Run commits until ctx ends, then commits whatever is still queued and
// returns. Callers stop every source before ending ctx, so nothing is
// enqueued after the drain (supervise does, in reverse order of start).
// Run it once.
func (w *Writer) Run(ctx context.Context) error {
	w.stop = ctx.Done()
	batch := make([]frame.Record, 0, maxBatch)
	w.running.Store(true)
	for {
		select {
		case r := <-w.queue:
			batch = append(batch[:0], r)
		case <-w.stop:
			w.running.Store(false)
			w.drain(batch[:0])
			return nil
		}
		w.space()
		batch = w.fill(batch)
		w.lastStart = time.Now()
		w.commit(batch)
	}
}

// space waits until the last commit started an interval ago, or until a
// full batch is queued (the queue must never fill because of the wait), or
// until Run's ctx ends.
func (w *Writer) space() {
	deadline := w.lastStart.Add(w.opts.Interval)
	if !time.Now().Before(deadline) {
		return
	}
	tick := time.NewTicker(min(5*time.Millisecond, w.opts.Interval))
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
// are counted as drops if the queue fills). A full buffer (MaxSize or a
// full disk) is not retried: the batch is refused.
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
			// A commit that went through ends any refusal: records queued
			// before a refused batch can commit once space is back (a full
			// disk's ENOSPC came from growing the file), and new frames must
			// then be taken again, not refused until the compactor frees.
			w.full.Store(false)
			w.diskFull.Store(false)
			w.setErr("")
			w.reportRefused(0)
			tell(batch, nil)
			w.failing.Ended(w.log, time.Now(), "commits succeed again")
			w.refusals.Ended(w.log, time.Now(), "frames taken again after the buffer was full")
			if w.opts.OnCommit != nil {
				w.opts.OnCommit(len(batch), took)
			}
			return
		}
		if IsFull(err) || IsDiskFull(err) {
			w.refuse(batch, err)
			tell(batch, err)
			return
		}
		w.failures.Add(1)
		w.setErr(err.Error())
		w.failing.Failed(context.Background(), w.log.With(logkey.Records, len(batch)), time.Now(),
			"commit failed; holding the records and retrying", "commits still failing; holding the records", err)
		if w.opts.OnFailure != nil {
			w.opts.OnFailure(err)
		}
		select {
		case <-time.After(backoff):
		case <-w.stop:
			// One last try at shutdown, then give up loudly.
			err := w.db.Append(batch)
			if err != nil {
				w.log.Error("records lost at shutdown: buffer will not commit", logkey.Records, len(batch), logkey.Err, err)
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

// refuse refuses batch, and new frames until the compactor makes room (or,
// for a full disk, until DiskFullRetry has passed): holding the batch would
// stall every stream.
func (w *Writer) refuse(batch []frame.Record, err error) {
	disk := IsDiskFull(err)
	// The fault is reported before the writer shows itself full: a reader
	// of Stats (the status page) then finds the fault as well.
	w.fullWhy = err
	w.reportRefused(int64(len(batch)))
	w.freedAtFull.Store(w.db.freed.Load())
	w.retryAt.Store(time.Now().Add(DiskFullRetry).UnixNano())
	w.diskFull.Store(disk)
	w.full.Store(true)
	w.refused.Add(int64(len(batch)))
	w.dropped.Add(int64(len(batch)))
	w.failures.Add(1)
	w.setErr(err.Error())
	msg, log := "buffer full: refusing frames until the compactor makes room", w.log.With("max_size", w.db.MaxSize())
	if disk {
		msg, log = "disk full: refusing frames until there is space for the buffer again", w.log.With(logkey.Path, w.db.Path())
	}
	w.refusals.Failed(context.Background(), log.With("refused", len(batch)), time.Now(), msg, "still refusing frames: "+msg, err)
	if w.opts.OnFailure != nil {
		w.opts.OnFailure(err)
	}
}

// reportRefused passes OnRefused the refusals not yet reported, counting
// more about to be refused.
func (w *Writer) reportRefused(more int64) {
	if n := w.refused.Load() + more; n > w.reported {
		if w.opts.OnRefused != nil {
			w.opts.OnRefused(n-w.reported, w.fullWhy)
		}
		w.reported = n
	}
}

func (w *Writer) setErr(s string) {
	w.mu.Lock()
	w.lastErr = s
	w.mu.Unlock()
}

// Behind reports whether the writer is behind the sources: at least a
// full commit's worth (or half the queue) is waiting. Work that can wait,
// like deriving analytics from committed records, holds back meanwhile.
func (w *Writer) Behind() bool {
	return len(w.queue) >= min(maxBatch, cap(w.queue)/2)
}

// WriterStats is a snapshot of the writer's counters.
type WriterStats struct {
	Queued     int
	QueueCap   int
	Waited     int64 // frames that found the queue full and waited for room
	Dropped    int64
	Refused    int64 // of Dropped, refused because the buffer was full
	Full       bool  // new frames are refused until the compactor makes room
	DiskFull   bool  // of Full: the file system holding the buffer is full
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
		Waited:    w.waited.Load(),
		Dropped:   w.dropped.Load(),
		Refused:   w.refused.Load(),
		Full:      w.full.Load() || w.diskFull.Load(),
		DiskFull:  w.diskFull.Load(),
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
