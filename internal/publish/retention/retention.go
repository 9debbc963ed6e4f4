// Package retention removes the archive's hourly files from the drive once
// they are older than archive.keep_days. When upload is on, a file goes
// only once the upload ledger records it as in the bucket, so retention
// never deletes the one copy of anything. Only published files
// (stream=<s>/date=<d>/<name>.parquet, named as the archive names them)
// are touched; date folders left empty are removed too. The bucket's side
// is the bucket's own lifecycle rules (docs/privacy.md).
package retention

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/practable/lablog/internal/platform/defaults"
	"github.com/practable/lablog/internal/publish/archive"
)

// DefaultInterval is how often the drive is swept: files age by the hour.
const DefaultInterval = time.Hour

// Options configure a Sweeper.
type Options struct {
	Root    string // archive.path
	Require string // archive.require: nothing is removed from a drive that is not the archive
	// KeepDays: a file whose hour ended more than KeepDays days ago is
	// removed. 0 keeps everything (the sweeper still reports the oldest
	// file).
	KeepDays int
	// Uploaded, when set (upload on), says whether a file, by its path
	// relative to Root, slash-separated, is safely in the bucket; a file
	// it does not confirm is kept, and counted as held.
	Uploaded func(rel string) (bool, error)
	Interval time.Duration // DefaultInterval when 0
	// HeldRetry, when set, is the wait before the next sweep while files
	// are held for upload (the upload's interval), so they leave the drive
	// soon after they reach the bucket rather than an Interval later.
	HeldRetry time.Duration
	Now       func() time.Time // time.Now when nil
	Logger    *slog.Logger
}

// Stats is what the status page shows.
type Stats struct {
	KeepDays int
	// Since start: files removed and their bytes.
	FilesRemoved, BytesRemoved int64
	// OldestKept is the hour of the oldest file left on the drive (zero
	// when none); FilesKept counts them.
	OldestKept time.Time
	FilesKept  int
	// Held are files past retention kept because they are not uploaded yet.
	Held        int
	LastSweepAt time.Time
	LastError   string
}

// Sweeper removes old files. Run sweeps every Interval; Sweep sweeps once.
type Sweeper struct {
	o   Options
	log *slog.Logger

	mu sync.Mutex
	st Stats
}

// New makes a Sweeper.
func New(o Options) *Sweeper {
	defaults.Positive(&o.Interval, DefaultInterval)
	defaults.Clock(&o.Now)
	defaults.Logger(&o.Logger)
	return &Sweeper{o: o, log: o.Logger, st: Stats{KeepDays: o.KeepDays}}
}

// Stats returns the counts so far.
func (s *Sweeper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Run sweeps at once and then every Interval (HeldRetry while files are
// held) until ctx ends.
func (s *Sweeper) Run(ctx context.Context) error {
	for {
		if err := s.Sweep(); err != nil {
			s.log.Warn("retention: sweep failed", "err", err)
		}
		wait := s.o.Interval
		if s.Stats().Held > 0 && s.o.HeldRetry > 0 {
			wait = min(wait, s.o.HeldRetry)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Sweep removes every published file whose hour ended more than KeepDays
// days before now (and, with Uploaded, is in the bucket), then notes the
// oldest file kept.
func (s *Sweeper) Sweep() error {
	now := s.o.Now()
	err := s.sweep(now)
	s.mu.Lock()
	s.st.LastSweepAt = now
	s.st.LastError = ""
	if err != nil {
		s.st.LastError = err.Error()
	}
	s.mu.Unlock()
	return err
}

func (s *Sweeper) sweep(now time.Time) error {
	if err := archive.CheckTarget(s.o.Root, s.o.Require); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	files, err := archive.Files(s.o.Root)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	cutoff := now.Add(-time.Duration(s.o.KeepDays) * 24 * time.Hour)
	var oldest time.Time
	kept, held := 0, 0
	var removed, bytes int64
	dirs := map[string]bool{}
	var firstErr error
	for _, f := range files {
		rel, err := filepath.Rel(s.o.Root, f.Path)
		if err != nil {
			continue
		}
		rel = filepath.ToSlash(rel)
		n, ok := published(rel)
		if !ok {
			continue // not an hourly file of the layout: not ours to remove
		}
		expired := s.o.KeepDays > 0 && !n.Hour.Add(time.Hour).After(cutoff)
		if expired && s.o.Uploaded != nil {
			up, err := s.o.Uploaded(rel)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if !up {
				held++
				expired = false
			}
		}
		if expired {
			if err := os.Remove(f.Path); errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile (upload.delete_after_upload)
			} else if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("retention: %w", err)
				}
			} else {
				removed++
				bytes += f.Size
				dirs[filepath.Dir(f.Path)] = true
				continue
			}
		}
		kept++
		if oldest.IsZero() || n.Hour.Before(oldest) {
			oldest = n.Hour
		}
	}
	for d := range dirs {
		_ = os.Remove(d) // only when empty: other files (a .bad one) keep it
	}
	s.mu.Lock()
	s.st.FilesRemoved += removed
	s.st.BytesRemoved += bytes
	s.st.OldestKept, s.st.FilesKept, s.st.Held = oldest, kept, held
	s.mu.Unlock()
	if removed > 0 {
		s.log.Info("retention: removed files older than keep_days", "files", removed, "bytes", bytes,
			"keep_days", s.o.KeepDays, "oldest_kept", oldest)
	}
	return firstErr
}

// published reads rel as stream=<s>/date=<d>/<name>, the name's stream
// and date agreeing with its folders.
func published(rel string) (archive.Name, bool) {
	parts := strings.Split(rel, "/")
	if len(parts) != 3 {
		return archive.Name{}, false
	}
	n, ok := archive.ParseFileName(parts[2])
	if !ok || parts[0] != "stream="+n.Stream || parts[1] != "date="+n.Hour.UTC().Format(time.DateOnly) {
		return archive.Name{}, false
	}
	return n, true
}
