// Package compactor moves closed hours from the buffer into the archive:
// one Parquet file per group (stream, hour and record identity), published
// atomically and verified before its records leave the buffer.
//
// Crash repair decides "already archived" by content, never by sequence
// ranges alone: a file of the same stream, hour and buffer id whose range
// holds buffered records settles them only when the checksum of exactly
// those buffered frames equals the file's. Records of a fresh buffer have a
// new buffer id, so they can never be mistaken for older, archived ones.
//
// The drive is held open for a run and checked again before every file and
// before every removal from the buffer, so a drive pulled mid-run fails the
// file instead of writing to the SD card, and nothing leaves the buffer that
// is not on the drive.
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

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/salvage"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// Failpoints of a run, in order.
const (
	// FailBeforeFile is hit before each group is archived.
	FailBeforeFile = "compact-before-file"
	// FailAfterPublish is hit between a file's publication and the removal
	// of its records from the buffer.
	FailAfterPublish = "compact-after-publish-before-delete"
)

// Defaults of the schedule (config.Default is built from these).
const (
	DefaultInterval = time.Hour       // scheduled runs, aligned to the clock
	DefaultGrace    = 2 * time.Minute // late frames of an hour still arrive
	DefaultRetry    = time.Minute     // after a failed run
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
	// Fault, when set, is told of what must not go unnoticed: damaged
	// records set aside, an archive file whose content conflicts.
	Fault func(kind fault.Kind, detail string, count int64)
	// BeforeSettle, when set, is called before archived records of g up to
	// seq last are deleted from the buffer; an error keeps them there (and
	// the run retries). The live analytics store consumes them in it.
	BeforeSettle func(g buffer.Group, last uint64) error
	// Filter, when set, is applied to every record on its way to the
	// archive (and when a crash's leftovers are reconciled): it returns the
	// record to archive, possibly changed, or keep = false to leave it
	// out. Left-out records are still removed from the buffer. The
	// subject tombstone list (erased users) is applied so.
	Filter func(seq uint64, r frame.Record) (out frame.Record, keep bool)
}

// Result describes one run.
type Result struct {
	Started  time.Time
	Finished time.Time
	Files    int   // files published
	Records  int   // buffer records moved to the archive
	Bytes    int64 // bytes of published files
	SetAside int64 // records in damaged blocks, set aside instead of archived
	// Salvaged and Unreadable count the records of quarantined buffer files
	// archived and found unreadable (see salvage).
	Salvaged, Unreadable int64
	Early                bool  // the buffer passed half its size: open hours were archived too
	Err                  error // the first error; the run goes on with other hours after one
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
	early   time.Time // when TriggerIfFull last fired
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
		opts.Interval = DefaultInterval
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
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

// TriggerIfFull asks for a run now when the buffer holds more than half of
// its maximum size, at most once per Retry: that run archives the open hours
// too (early part files), before the buffer fills and frames are refused.
func (c *Compactor) TriggerIfFull() {
	if !c.full() {
		return
	}
	c.mu.Lock()
	now := c.opts.Now()
	fire := now.Sub(c.early) >= c.opts.Retry
	if fire {
		c.early = now
	}
	c.mu.Unlock()
	if fire {
		c.Trigger()
	}
}

func (c *Compactor) full() bool {
	return c.db.MaxSize() > 0 && c.db.Used() >= c.db.MaxSize()/2
}

// Last is the result of the latest finished run.
func (c *Compactor) Last() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Run compacts at start (hours left over from before), then on schedule and
// on Trigger, until ctx is done. A failed run is retried every Retry, so
// Run returns nil: failures are in each Result.
func (c *Compactor) Run(ctx context.Context) error {
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
			return nil
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
		c.opts.Logger.Error("compaction failed; records stay in the buffer", logkey.Err, res.Err)
	} else if res.Files > 0 {
		c.opts.Logger.Info("compaction done", "files", res.Files, logkey.Records, res.Records, "bytes", res.Bytes,
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
	// A settle that failed half way would leave archived records to be
	// archived again.
	if err := c.db.FinishSettles(); err != nil {
		return err
	}
	groups, err := c.db.Groups()
	if err != nil {
		return err
	}
	// The drive is checked even with nothing to archive: a run that
	// published nothing because the drive is missing must not read as ok.
	root, err := archive.OpenRoot(c.opts.Root, c.opts.Require)
	if err != nil {
		return err
	}
	defer root.Close()
	if !c.cleaned {
		n, err := archive.CleanTemp(root.Path())
		if err != nil {
			return err
		}
		if n > 0 {
			c.opts.Logger.Warn("removed temporary files left by an interrupted compaction", "files", n)
		}
		c.cleaned = true
	}
	res.Early = c.full()
	if res.Early {
		c.opts.Logger.Warn("buffer past half its maximum size: archiving the open hours early",
			"used", c.db.Used(), "max_size", c.db.MaxSize())
	}
	first := c.salvage(ctx, root, res)
	if first != nil && isDriveError(first) {
		return first
	}
	now := c.opts.Now()
	// A group's published file is checked and its records settled while
	// the next group is written: the two take a core each.
	var finishing chan error
	// failed keeps the first error and says whether to stop: a full,
	// missing or replaced drive fails every group alike.
	failed := func(err error) (stop bool) {
		if err == nil {
			return false
		}
		if first == nil {
			first = err
		}
		return isDriveError(err)
	}
	waitFinish := func() (stop bool) {
		if finishing == nil {
			return false
		}
		stop = failed(<-finishing)
		finishing = nil
		return stop
	}
	defer waitFinish() // a panic still waits for the group being finished
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return err // the deferred waitFinish waits for the group in flight
		}
		if !res.Early && !c.closed(g.Hour, now) {
			continue
		}
		var wg *writtenGroup
		err := failpoint.Hit(FailBeforeFile)
		if err == nil {
			wg, err = c.writeGroup(ctx, root, g)
		}
		stop := waitFinish() // the earlier group's error comes first
		if err != nil || stop {
			stop = failed(err) || stop
			wg.abandon()
			if stop {
				return first
			}
			continue
		}
		done := make(chan error, 1)
		go func() { done <- wg.finish(res) }()
		finishing = done
	}
	waitFinish()
	return first
}

// salvage archives the intact records of buffer files quarantined beside
// this one, each once, so a technician need do nothing: a file whose
// archive could not be written is tried again by the next run.
func (c *Compactor) salvage(ctx context.Context, root *archive.Root, res *Result) error {
	reports, err := salvage.Pending(ctx, root, c.db.Path(), salvage.Options{RowGroupRows: c.opts.RowGroupRows, Logger: c.opts.Logger, Filter: c.opts.Filter})
	for _, r := range reports {
		res.Files += r.Files
		res.Salvaged += r.Archived
		res.Unreadable += r.Unreadable
		// A file nothing could be read of is already the quarantine's fault.
		if r.Unreadable > 0 && c.opts.Fault != nil {
			c.opts.Fault(fault.RecordsSetAside, fmt.Sprintf("%s: salvaged %d records; %d unreadable (report in %s)",
				r.File, r.Archived, r.Unreadable, c.db.DamagedDir()), r.Unreadable)
		}
	}
	return err
}

// isDriveError tells errors of the drive as a whole, after which trying the
// other hours is pointless, from errors of one hour.
func isDriveError(err error) bool {
	var target *archive.TargetError
	return errors.As(err, &target) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, syscall.EIO)
}

// writtenGroup is a group's records written to an archive file: finish
// verifies the published file and settles the records, abandon drops a
// file not published.
type writtenGroup struct {
	c           *Compactor
	root        *archive.Root
	g           buffer.Group
	w           *archive.Writer // until the file is published or dropped
	archived    bool            // reconcile found the records archived already
	path        string          // the published file
	n, kept     int
	first, last uint64 // of the records scanned, kept or not
	damaged     []buffer.Damaged
	consumed    func() // waits for consumeAhead
}

// writeGroup writes one group's records to a new archive file. It changes
// nothing the previous group's finish reads.
func (c *Compactor) writeGroup(ctx context.Context, root *archive.Root, g buffer.Group) (*writtenGroup, error) {
	wrap := func(err error) error { return fmt.Errorf("compact %s: %w", g, err) }
	wg := &writtenGroup{c: c, root: root, g: g, consumed: func() {}}
	if done, err := c.reconcile(root, g); err != nil || done {
		wg.archived = done
		return wg, err
	}
	w, err := root.Create(g.Stream, g.Hour, archive.Options{RowGroupRows: c.opts.RowGroupRows, BufferID: g.BufferID})
	if err != nil {
		return wg, wrap(err)
	}
	wg.w = w
	wg.consumed = c.consumeAhead(g)
	wg.damaged, err = c.db.Scan(g, 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if wg.n == 0 {
			wg.first = seq
		}
		wg.n++
		wg.last = seq
		if c.opts.Filter != nil {
			var keep bool
			if r, keep = c.opts.Filter(seq, r); !keep {
				return nil
			}
		}
		wg.kept++
		return w.Add(archive.Entry{Seq: seq, Rec: r})
	})
	if err != nil {
		return wg, wrap(err)
	}
	if wg.kept > 0 {
		// Published here, so the writer's buffers are free before the
		// next group's are taken.
		return wg, wg.publish()
	}
	return wg, nil
}

// finish verifies the group's published file, settles its records, and
// sets damaged blocks aside.
func (wg *writtenGroup) finish(res *Result) error {
	defer wg.abandon()
	c, g := wg.c, wg.g
	switch {
	case wg.archived:
		return nil
	case wg.kept > 0:
		if wg.path == "" { // never settle records whose file is not out
			return fmt.Errorf("compact %s: records stay in the buffer: their file was not published", g)
		}
		if err := c.settlePublished(wg.root, g, wg.path, wg.first, wg.last, res); err != nil {
			return err
		}
		res.Records += wg.n
	case wg.n > 0:
		// Every record was filtered out: nothing to publish, all to settle
		// (finish runs only for a group whose scan went to its end).
		if err := c.settle(wg.root, g, wg.first, wg.last); err != nil {
			return err
		}
		res.Records += wg.n
	}
	return c.setAside(g, wg.damaged, res)
}

// abandon removes the file if it was not published and waits for the
// records consumed ahead; nil and finished groups are fine.
func (wg *writtenGroup) abandon() {
	if wg == nil {
		return
	}
	if wg.w != nil {
		wg.w.Abort()
	}
	wg.consumed()
}

// publish finishes the group's file and publishes it. A file already
// there (published before a crash, and more records came since reconcile
// looked; or a conflict) is reconcile's to settle or report.
func (wg *writtenGroup) publish() error {
	path, err := wg.w.Publish()
	wg.w = nil // the writer's buffers go with it
	if errors.Is(err, archive.ErrExists) {
		wg.archived = true
		_, err := wg.c.reconcile(wg.root, wg.g)
		return err
	}
	if err != nil {
		return fmt.Errorf("compact %s: %w", wg.g, err)
	}
	wg.path = path
	return nil
}

// settlePublished verifies the group's published file and settles the
// records scanned for it, first to last (a filter may have left some out
// of the file).
func (c *Compactor) settlePublished(root *archive.Root, g buffer.Group, path string, first, last uint64, res *Result) error {
	meta, err := c.verifyAndConsume(path, g, last)
	if err != nil {
		return err
	}
	if err := failpoint.Hit(FailAfterPublish); err != nil {
		return fmt.Errorf("compact %s: %w", g, err)
	}
	if c.opts.Filter == nil {
		first, last = meta.FirstSeq, meta.LastSeq
	}
	if err := c.settle(root, g, first, last); err != nil {
		return err
	}
	res.Files++
	if st, err := os.Stat(path); err == nil {
		res.Bytes += st.Size()
	}
	return nil
}

// consumeAhead lets BeforeSettle consume g's records on a second core
// while this one writes them to the archive, and returns the wait for it.
// A daemon's analytics store has them already (it follows the commits);
// a standalone compaction's store meets them here first, and doing so
// after the file is written made half of a compaction's wait. Its error
// is not lost: settle calls BeforeSettle again, which then does what is
// left and says what went wrong.
func (c *Compactor) consumeAhead(g buffer.Group) (wait func()) {
	if c.opts.BeforeSettle == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.opts.BeforeSettle(g, ^uint64(0)); err != nil {
			c.opts.Logger.Debug("compact: consuming ahead failed; settle tries again", "group", g.String(), logkey.Err, err)
		}
	}()
	return func() { <-done }
}

// verifyAndConsume re-reads the published file on a second goroutine while
// BeforeSettle, when set, consumes the same records from the buffer: the
// two read different files and each takes a core, where one after the other
// they made a third of a compaction wait. Consuming before the file is
// verified is what a daemon's analytics store does anyway (it follows the
// commits), and the records stay in the buffer until settle, which calls
// BeforeSettle again (then it has nothing left to do).
func (c *Compactor) verifyAndConsume(path string, g buffer.Group, last uint64) (archive.Meta, error) {
	type verified struct {
		meta archive.Meta
		err  error
	}
	done := make(chan verified, 1)
	go func() {
		m, err := archive.Verify(path)
		done <- verified{m, err}
	}()
	var consumeErr error
	if c.opts.BeforeSettle != nil {
		consumeErr = c.opts.BeforeSettle(g, last)
	}
	v := <-done
	if v.err != nil {
		return v.meta, fmt.Errorf("compact %s: published file does not verify: %w", g, v.err)
	}
	if consumeErr != nil {
		return v.meta, fmt.Errorf("compact %s: records stay in the buffer: %w", g, consumeErr)
	}
	return v.meta, nil
}

// settle removes archived records from the buffer, after making sure the
// drive that holds them is still the one the run started with.
func (c *Compactor) settle(root *archive.Root, g buffer.Group, first, last uint64) error {
	if err := root.Check(); err != nil {
		return fmt.Errorf("compact %s: records stay in the buffer: %w", g, err)
	}
	if c.opts.BeforeSettle != nil {
		if err := c.opts.BeforeSettle(g, last); err != nil {
			return fmt.Errorf("compact %s: records stay in the buffer: %w", g, err)
		}
	}
	if _, err := c.db.Settle(g, first, last); err != nil {
		return fmt.Errorf("compact %s: %w", g, err)
	}
	return nil
}

// setAside keeps damaged blocks out of the archive: they are written next to
// the buffer for inspection, counted and reported.
func (c *Compactor) setAside(g buffer.Group, damaged []buffer.Damaged, res *Result) error {
	for _, dm := range damaged {
		path, err := c.db.SetAside(g, dm)
		if err != nil {
			return fmt.Errorf("compact %s: %w", g, err)
		}
		res.SetAside += dm.Records
		c.opts.Logger.Error("DAMAGED RECORDS in the buffer: set aside, not archived",
			"group", g.String(), logkey.Records, dm.Records, logkey.Path, path, logkey.Err, dm.Err)
		if c.opts.Fault != nil {
			c.opts.Fault(fault.RecordsSetAside, fmt.Sprintf("%s: %d records in a damaged block kept at %s", g, dm.Records, path), dm.Records)
		}
	}
	return nil
}

// reconcile looks for files of g's stream, hour and identity whose range
// holds records still in the buffer: a crash between publish and settle
// leaves exactly that. Records whose exact frames the file holds (same
// checksum, same count) are settled. A file that does not verify is set
// aside and its records archived again. A verified file whose content
// differs is a conflict: nothing is removed, the group is left in the
// buffer (done = true) and the conflict reported for a person to look at.
func (c *Compactor) reconcile(root *archive.Root, g buffer.Group) (done bool, err error) {
	dir := archive.PartitionDir(root.Path(), g.Stream, g.Hour)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("compact %s: %w", g, err)
	}
	for _, e := range entries {
		name, ok := archive.ParseFileName(e.Name())
		if !ok || name.Stream != g.Stream || !name.Hour.Equal(g.Hour) || name.BufferID != g.BufferID {
			continue
		}
		sum, count := archive.NewChecksum(), int64(0)
		if _, err := c.db.Scan(g, name.First, name.Last, func(seq uint64, r frame.Record) error {
			if c.opts.Filter != nil {
				var keep bool
				if r, keep = c.opts.Filter(seq, r); !keep {
					return nil
				}
			}
			sum.Add(seq, r.Kind, r.Data)
			count++
			return nil
		}); err != nil {
			return false, fmt.Errorf("compact %s: %w", g, err)
		}
		if count == 0 {
			continue
		}
		path := filepath.Join(dir, e.Name())
		meta, err := archive.Verify(path)
		if err != nil {
			if err := root.Check(); err != nil {
				return false, fmt.Errorf("compact %s: %w", g, err)
			}
			aside := path + ".bad"
			c.opts.Logger.Error("archive file does not verify; setting it aside and archiving its records again",
				logkey.Path, path, "aside", aside, logkey.Err, err)
			if err := os.Rename(path, aside); err != nil {
				return false, fmt.Errorf("compact %s: set aside %s: %w", g, path, err)
			}
			continue
		}
		if meta.Checksum != sum.String() || meta.Frames != count {
			c.opts.Logger.Error("IDENTITY CONFLICT: an archive file names records of this buffer but holds other frames; "+
				"keeping the records in the buffer", "group", g.String(), logkey.Path, path,
				"file_frames", meta.Frames, "buffer_frames", count)
			if c.opts.Fault != nil {
				c.opts.Fault(fault.IdentityConflict, fmt.Sprintf("%s: %s holds other frames than the buffer's %d records with these seqs",
					g, path, count), count)
			}
			return true, nil
		}
		if err := c.settle(root, g, name.First, name.Last); err != nil {
			return false, err
		}
		c.opts.Logger.Warn("found records already archived by an interrupted compaction; removed them from the buffer",
			logkey.Path, path, logkey.Records, count)
	}
	return false, nil
}
