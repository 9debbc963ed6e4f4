package subject

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
)

// Failpoints of an erasure, in the order it reaches them.
const (
	FailAfterTombstone = "subject-after-tombstone"
	FailAfterBuffer    = "subject-after-buffer"
	FailAfterPlan      = "subject-after-plan"
	FailAfterPublish   = "subject-after-publish-before-remove" // each drive file
	FailAfterFile      = "subject-after-file"                  // each drive file done
	FailAfterPut       = "subject-after-put-before-delete"     // each bucket object
	FailBeforeReport   = "subject-before-report"
	FailAfterReport    = "subject-after-report-before-journal-removal"
)

// Failpoints lists them all, for tests that kill an erasure at each.
var Failpoints = []string{FailAfterTombstone, FailAfterBuffer, FailAfterPlan, FailAfterPublish, FailAfterFile,
	FailAfterPut, FailBeforeReport, FailAfterReport}

// Bucket is the bucket as an erasure needs it: this site's objects, by
// their path relative to the site (stream=<s>/date=<d>/<name>).
type Bucket interface {
	List(ctx context.Context) (map[string]bool, error)
	Get(ctx context.Context, rel, dst string) error
	// Put uploads src as rel (its SHA-256 given, for the bucket to check)
	// and records it as uploaded, so the uploader does not send it again.
	Put(ctx context.Context, rel, src, sha256Hex string) error
	Delete(ctx context.Context, rel string) error
	String() string // where it is, for the report
}

// Options say where an erasure works.
type Options struct {
	DataDir      string // tombstones, journal, key and reports (the buffer's directory)
	Archive      string // the archive's root; "" when there is none
	Require      string // archive.CheckTarget mode for Archive
	RowGroupRows int
	// Buffer removes m's records from the buffer (and whatever feeds from
	// it), returning how many rows went; nil when there is no buffer.
	Buffer func(ctx context.Context, m Matcher) (int64, error)
	Bucket Bucket // nil: the bucket is left alone
	// DropAnalytics removes derived state that may hold the user's
	// records, to be rebuilt from what is left; nil when there is none.
	DropAnalytics func() error
	Version       string
	Now           func() time.Time
	Logger        *slog.Logger
}

// ErrOtherErasure: the journal holds another user's unfinished erasure.
var ErrOtherErasure = errors.New("another erasure is unfinished")

// Unfinished returns the user of the erasure the journal in dataDir holds,
// "" when there is none.
func Unfinished(dataDir string) (string, error) {
	j, err := loadJournal(filepath.Join(dataDir, JournalFile))
	if err != nil || j == nil {
		return "", err
	}
	return j.User, nil
}

// Erase removes every row of user from the buffer, the archive and the
// bucket, and writes a signed report, whose path it returns. Each step
// is journaled: after a crash anywhere, Erase with the same user finishes
// the job; no file is removed before its replacement is verified.
func Erase(ctx context.Context, user string, o Options) (string, *Report, error) {
	if user == "" {
		return "", nil, errors.New("erase: empty user id")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	jpath := filepath.Join(o.DataDir, JournalFile)
	j, err := loadJournal(jpath)
	if err != nil {
		return "", nil, err
	}
	switch {
	case j == nil:
		j = &Journal{User: user, UserHash: Hash(user), Started: o.Now().UTC(), Archive: o.Archive}
		if err := j.save(jpath); err != nil {
			return "", nil, fmt.Errorf("erase: %w", err)
		}
	case j.User != user:
		return "", nil, fmt.Errorf("erase: %w: %s holds the erasure of user %s; run it again for that user first", ErrOtherErasure, jpath, Hash(j.User))
	default:
		o.Logger.Info("resuming an interrupted erasure", "journal", jpath)
	}
	e := eraser{o: o, j: j, jpath: jpath, m: One(user)}
	if err := e.run(ctx); err != nil {
		return "", nil, fmt.Errorf("erase (run it again to finish; journal %s): %w", jpath, err)
	}
	failpoint.Hit(FailBeforeReport)
	path, rep, err := e.report()
	if err != nil {
		return "", nil, fmt.Errorf("erase: report: %w", err)
	}
	failpoint.Hit(FailAfterReport)
	if err := os.Remove(jpath); err != nil {
		return path, rep, fmt.Errorf("erase: done, but the journal stays: %w", err)
	}
	return path, rep, syncDir(o.DataDir)
}

type eraser struct {
	o     Options
	j     *Journal
	jpath string
	m     Matcher
	saved time.Time // last save of the journal
}

func (e *eraser) save() error {
	e.saved = time.Now()
	return e.j.save(e.jpath)
}

func (e *eraser) run(ctx context.Context) error {
	// The tombstone first: whatever runs from now on drops the user.
	if err := AddTombstone(filepath.Join(e.o.DataDir, TombstoneFile), e.j.User); err != nil {
		return err
	}
	failpoint.Hit(FailAfterTombstone)
	if e.j.Buffer == nil && e.o.Buffer != nil {
		n, err := e.o.Buffer(ctx, e.m)
		if err != nil {
			return fmt.Errorf("buffer: %w", err)
		}
		e.j.Buffer = &n
		if err := e.save(); err != nil {
			return err
		}
		failpoint.Hit(FailAfterBuffer)
	}
	var root *archive.Root
	if e.o.Archive != "" {
		r, err := archive.OpenRoot(e.o.Archive, e.o.Require)
		if err != nil {
			return err
		}
		defer r.Close()
		root = r
		if _, err := archive.CleanTemp(r.Path()); err != nil {
			return err
		}
		if err := e.plan(ctx); err != nil {
			return err
		}
		failpoint.Hit(FailAfterPlan)
		for i := range e.j.Files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if f := &e.j.Files[i]; f.Source == "drive" && !f.Done {
				if err := e.rewriteDrive(root, f); err != nil {
					return err
				}
				failpoint.Hit(FailAfterFile)
			}
		}
		if err := e.save(); err != nil {
			return err
		}
	}
	if e.o.Bucket != nil {
		if err := e.bucket(ctx); err != nil {
			return fmt.Errorf("bucket %s: %w", e.o.Bucket, err)
		}
	}
	if !e.j.Analytic && e.o.DropAnalytics != nil {
		if err := e.o.DropAnalytics(); err != nil {
			return fmt.Errorf("analytics: %w", err)
		}
		e.j.Analytic = true
		return e.save()
	}
	return nil
}

// plan finds every archive file with a row of the user and records it,
// with its hash, before any is changed.
func (e *eraser) plan(ctx context.Context) error {
	if e.j.Planned {
		return nil
	}
	files, err := archive.Files(e.o.Archive)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, found, err := planFile(e.o.Archive, f.Path, e.m)
		if err != nil {
			return err
		}
		if found {
			p.Source = "drive"
			e.j.Files = append(e.j.Files, p)
		}
	}
	e.j.Planned = true
	return e.save()
}

// planFile counts the user's rows in one file and names its replacement.
func planFile(root, path string, m Matcher) (FilePlan, bool, error) {
	c, err := Count(path, m)
	if err != nil || c.Rows == 0 {
		return FilePlan{}, false, err
	}
	sum, err := FileSHA256(path)
	if err != nil {
		return FilePlan{}, false, err
	}
	rel, err := relPath(root, path)
	if err != nil {
		return FilePlan{}, false, err
	}
	p := FilePlan{Old: rel, OldSHA256: sum, OldRows: c.Meta.Rows, Rows: c.Rows}
	if c.New.Stream != "" {
		p.New, err = relPath(root, filepath.Join(archive.PartitionDir(root, c.New.Stream, c.New.Hour), archive.FileName(c.New)))
	}
	return p, true, err
}

// rewriteDrive replaces one planned file: the new one published and
// verified, then the old one removed.
func (e *eraser) rewriteDrive(root *archive.Root, f *FilePlan) error {
	oldPath := filepath.Join(e.o.Archive, filepath.FromSlash(f.Old))
	newPath := ""
	if f.New != "" {
		newPath = filepath.Join(e.o.Archive, filepath.FromSlash(f.New))
	}
	if err := e.replace(root, oldPath, newPath, f); err != nil {
		return err
	}
	f.Done = true
	return e.progress()
}

// progressEvery bounds how often per-file progress is saved: the journal
// is rewritten whole, so saving after every file would cost the square of
// the files. Progress not saved is found again by a re-run (a step
// already done is seen done: new file there, old gone), so this is safe.
const progressEvery = 2 * time.Second

// progress saves the journal if the last save is older than progressEvery.
func (e *eraser) progress() error {
	if time.Since(e.saved) < progressEvery {
		return nil
	}
	return e.save()
}

// replace makes newPath the user-free copy of oldPath and removes oldPath.
// Re-run after a crash, it finds the new file published and only removes
// the old one.
func (e *eraser) replace(root *archive.Root, oldPath, newPath string, f *FilePlan) error {
	_, oldErr := os.Stat(oldPath)
	if oldErr != nil && !errors.Is(oldErr, fs.ErrNotExist) {
		return oldErr
	}
	oldThere := oldErr == nil
	newThere := false
	if newPath != "" {
		if _, err := os.Stat(newPath); err == nil {
			newThere = true
		}
	}
	var rows int64 = -1 // the new file's, once verified
	switch {
	case newThere:
		// Published before a crash: only the old file may be left.
	case !oldThere && newPath == "":
		// Nothing was to remain, and the old file is gone already.
	case !oldThere:
		return fmt.Errorf("%s: gone, and its replacement %s is not there", oldPath, newPath)
	default:
		out, err := Rewrite(root, oldPath, e.m, e.o.RowGroupRows)
		if err != nil {
			return err
		}
		if out.Path != newPath {
			return fmt.Errorf("%s: rewritten as %q, planned as %q", oldPath, out.Path, newPath)
		}
		rows = out.Rows // Rewrite verified it
		failpoint.Hit(FailAfterPublish)
	}
	if newPath != "" {
		if rows < 0 { // published by an interrupted run: verify it now
			m, err := archive.Verify(newPath)
			if err != nil {
				return err
			}
			rows = m.Rows
		}
		sum, err := FileSHA256(newPath)
		if err != nil {
			return err
		}
		f.NewSHA256, f.NewRows = sum, rows
		if rows != f.OldRows-f.Rows {
			return fmt.Errorf("%s: %d rows, want %d (%d less the user's %d)", newPath, rows, f.OldRows-f.Rows, f.OldRows, f.Rows)
		}
	}
	if oldThere {
		if err := os.Remove(oldPath); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(oldPath)); err != nil {
			return err
		}
	}
	return nil
}
