// Package compactor moves closed hours from the buffer into the archive:
// one Parquet file per stream and hour, published atomically and verified
// before the hour is deleted from the buffer. A crash at any point is
// repaired on the next run, because file names carry the sequence range they
// hold: a file already covering buffered records is verified, not rewritten.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/practable/lablog/internal/archive"
	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/failpoint"
	"github.com/practable/lablog/internal/frame"
)

// Options configure a Compactor.
type Options struct {
	Root         string        // archive directory
	Require      string        // archive.CheckTarget mode: marker, mountpoint or none
	RowGroupRows int           // bound on Parquet row groups
	Interval     time.Duration // period of scheduled runs, aligned to the clock (1h: at hh:00)
	Grace        time.Duration // wait after an hour ends before archiving it
	Retry        time.Duration // period of retries after a failed run
	OpenHours    bool          // also archive the hour still being recorded
	Now          func() time.Time
	Logger       *slog.Logger
	// OnResult, when set, is called after every run with its result, so
	// metrics see each run rather than sampling Last.
	OnResult func(Result)
}

// Result describes one run.
type Result struct {
	Started  time.Time
	Finished time.Time
	Files    int   // files published
	Records  int   // buffer records moved to the archive
	Bytes    int64 // bytes of published files
	Err      error // the first error; the run goes on with other hours after one
}

// Compactor schedules and performs buffer-to-archive moves.
type Compactor struct {
	db      *buffer.DB
	opts    Options
	trigger chan struct{}

	runMu   sync.Mutex // one run at a time
	mu      sync.Mutex
	last    Result
	cleaned bool
}

// New makes a compactor for db.
func New(db *buffer.DB, opts Options) *Compactor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Minute
	}
	return &Compactor{db: db, opts: opts, trigger: make(chan struct{}, 1)}
}

// Trigger asks the running schedule for a run now.
func (c *Compactor) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Last is the result of the latest finished run.
func (c *Compactor) Last() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Run compacts at start (hours left over from before), then on schedule and
// on Trigger, until ctx is done. A failed run is retried every Retry.
func (c *Compactor) Run(ctx context.Context) {
	for {
		res := c.RunOnce(ctx)
		wait := c.untilNext(c.opts.Now())
		if res.Err != nil && c.opts.Retry < wait {
			wait = c.opts.Retry
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.trigger:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// untilNext is the wait until the next aligned run: the next multiple of
// Interval plus Grace.
func (c *Compactor) untilNext(now time.Time) time.Duration {
	next := now.Truncate(c.opts.Interval).Add(c.opts.Grace)
	for !next.After(now) {
		next = next.Add(c.opts.Interval)
	}
	return next.Sub(now)
}

// closed reports whether hour may be archived now.
func (c *Compactor) closed(hour, now time.Time) bool {
	return c.opts.OpenHours || !now.Before(hour.Add(time.Hour+c.opts.Grace))
}

// RunOnce archives every closed hour of every stream. Records stay in the
// buffer when anything goes wrong, and the error is in the result.
func (c *Compactor) RunOnce(ctx context.Context) Result {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	res := Result{Started: c.opts.Now()}
	res.Err = c.runOnce(ctx, &res)
	res.Finished = c.opts.Now()
	if res.Err != nil {
		c.opts.Logger.Error("compaction failed; records stay in the buffer", "err", res.Err)
	} else if res.Files > 0 {
		c.opts.Logger.Info("compaction done", "files", res.Files, "records", res.Records, "bytes", res.Bytes,
			"took", res.Finished.Sub(res.Started).Round(time.Millisecond))
	}
	c.mu.Lock()
	c.last = res
	c.mu.Unlock()
	if c.opts.OnResult != nil {
		c.opts.OnResult(res)
	}
	return res
}

func (c *Compactor) runOnce(ctx context.Context, res *Result) error {
	streams, err := c.db.Streams()
	if err != nil {
		return err
	}
	if len(streams) == 0 {
		return nil
	}
	if err := archive.CheckTarget(c.opts.Root, c.opts.Require); err != nil {
		return err
	}
	if !c.cleaned {
		n, err := archive.CleanTemp(c.opts.Root)
		if err != nil {
			return err
		}
		if n > 0 {
			c.opts.Logger.Warn("removed temporary files left by an interrupted compaction", "files", n)
		}
		c.cleaned = true
	}
	var first error
	now := c.opts.Now()
	for _, stream := range streams {
		hours, err := c.db.Hours(stream)
		if err != nil {
			return err
		}
		for _, hour := range hours {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !c.closed(hour, now) {
				continue
			}
			if err := c.compactHour(ctx, stream, hour, res); err != nil {
				if first == nil {
					first = err
				}
				// A full or missing drive fails every hour alike: stop early.
				if isDriveError(err) {
					return first
				}
			}
		}
	}
	return first
}

// isDriveError tells errors of the drive as a whole, after which trying the
// other hours is pointless, from errors of one hour.
func isDriveError(err error) bool {
	var target *archive.TargetError
	return errors.As(err, &target) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS)
}

// compactHour moves one (stream, hour) to the archive.
func (c *Compactor) compactHour(ctx context.Context, stream string, hour time.Time, res *Result) error {
	if err := c.reconcile(stream, hour); err != nil {
		return err
	}
	w, err := archive.Create(c.opts.Root, stream, hour, archive.Options{RowGroupRows: c.opts.RowGroupRows})
	if err != nil {
		return fmt.Errorf("compact %s %s: %w", stream, hourName(hour), err)
	}
	n := 0
	err = c.db.Scan(stream, hour, func(seq uint64, r frame.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		return w.Add(archive.Entry{Seq: seq, Rec: r})
	})
	if err != nil || n == 0 {
		w.Abort()
		if err != nil {
			return fmt.Errorf("compact %s %s: %w", stream, hourName(hour), err)
		}
		return nil
	}
	path, err := w.Publish()
	if errors.Is(err, archive.ErrExists) {
		// Published before a crash, and new records came since reconcile
		// looked: settle it the same way.
		return c.reconcile(stream, hour)
	}
	if err != nil {
		return fmt.Errorf("compact %s %s: %w", stream, hourName(hour), err)
	}
	meta, err := archive.Verify(path)
	if err != nil {
		return fmt.Errorf("compact %s %s: published file does not verify: %w", stream, hourName(hour), err)
	}
	failpoint.Hit("compact-after-publish-before-delete")
	if _, err := c.db.DeleteRange(stream, hour, meta.FirstSeq, meta.LastSeq); err != nil {
		return fmt.Errorf("compact %s %s: %w", stream, hourName(hour), err)
	}
	res.Files++
	res.Records += n
	if st, err := os.Stat(path); err == nil {
		res.Bytes += st.Size()
	}
	return nil
}

// reconcile deletes from the buffer the records of (stream, hour) that an
// existing, verified archive file already holds: a crash between publish and
// delete leaves exactly that. A file that does not verify is set aside and
// its records are archived again.
func (c *Compactor) reconcile(stream string, hour time.Time) error {
	dir := archive.PartitionDir(c.opts.Root, stream, hour)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("compact %s %s: %w", stream, hourName(hour), err)
	}
	for _, e := range entries {
		s, h, first, last, ok := archive.ParseFileName(e.Name())
		if !ok || s != stream || !h.Equal(hour) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		held, err := c.db.HasRange(stream, hour, first, last)
		if err != nil {
			return err
		}
		if !held {
			continue
		}
		if _, err := archive.Verify(path); err != nil {
			aside := path + ".bad"
			c.opts.Logger.Error("archive file does not verify; setting it aside and archiving its records again",
				"file", path, "aside", aside, "err", err)
			if err := os.Rename(path, aside); err != nil {
				return fmt.Errorf("compact %s %s: set aside %s: %w", stream, hourName(hour), path, err)
			}
			continue
		}
		n, err := c.db.DeleteRange(stream, hour, first, last)
		if err != nil {
			return err
		}
		c.opts.Logger.Warn("found records already archived by an interrupted compaction; removed them from the buffer",
			"file", path, "records", n)
	}
	return nil
}

func hourName(h time.Time) string { return h.UTC().Format("2006-01-02T15") }
