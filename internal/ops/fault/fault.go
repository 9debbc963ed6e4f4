// Package fault keeps a persistent record of faults that must not go
// unnoticed: a corrupt buffer set aside, damaged records set aside at
// compaction, frames refused because the buffer was full, an archive file
// whose identity clashes with different content. A fault is logged where it
// happens; the Store makes it last: the status page, /api/status, /healthz,
// the metrics and the LED show it until someone acknowledges it or, by
// default, for 24 hours after it last happened.
//
// Faults merge by kind: one entry per kind holds when it was first and last
// seen, how many times (or things) in total, and the latest detail. The
// record is a small JSON file replaced atomically (temporary file, fsync,
// rename, fsync of the folder), so a restart does not forget a quarantine.
// A missing file is no faults; an unreadable or corrupt one is logged and
// replaced. The Store never stops the caller: a failure to save is logged
// and the fault is still shown from memory.
package fault

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/practable/lablog/internal/platform/atomicfile"
	"github.com/practable/lablog/internal/platform/defaults"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/retrylog"
)

// Kind names a kind of fault. The values are an API (JSON, metrics labels).
type Kind string

const (
	// BufferQuarantined: the buffer file was corrupt and set aside, and
	// recording went on in a fresh one. Detail: the quarantined file's path.
	BufferQuarantined Kind = "buffer_quarantined"
	// RecordsSetAside: damaged records found at compaction were set aside
	// with their raw bytes instead of being archived. Count: records.
	RecordsSetAside Kind = "records_set_aside"
	// FramesRefused: the buffer was full and new frames were refused.
	// Count: frames.
	FramesRefused Kind = "frames_refused"
	// IdentityConflict: an archive file has the same identity as records
	// being archived but different content. Detail: the file.
	IdentityConflict Kind = "identity_conflict"
	// UploadConflict: the bucket holds an object at an archive file's key
	// with other content; nothing was overwritten. Detail: the key and how
	// they differ.
	UploadConflict Kind = "upload_conflict"
	// UpdateRolledBack: an update (lablog update) failed its health check
	// and the previous lablog was installed again. Detail: why.
	UpdateRolledBack Kind = "update_rolled_back"
	// UpdateRefused: an update was not installed: its signature is missing,
	// forged or by an unknown key, or it is not lablog. Detail: file, why.
	UpdateRefused Kind = "update_refused"
)

// Kinds are the kinds lablog reports, in the order the status shows them.
var Kinds = []Kind{BufferQuarantined, RecordsSetAside, FramesRefused, IdentityConflict, UploadConflict,
	UpdateRolledBack, UpdateRefused}

// FileName is the record's name, next to the buffer (see recorder.OpenFaults).
const FileName = "faults.json"

// DefaultExpiry is how long after it last happened an unacknowledged fault
// stays active.
const DefaultExpiry = 24 * time.Hour

// DefaultSaveEvery bounds how often a fault already active is saved again
// when only its count or detail changed (see Store.Report).
const DefaultSaveEvery = 10 * time.Second

// Fault is what is known of one kind of fault.
type Fault struct {
	Kind   Kind      `json:"kind"`
	Detail string    `json:"detail"` // the latest report's
	Count  int64     `json:"count"`  // the sum of every report's count, ever
	First  time.Time `json:"first"`  // first report
	Last   time.Time `json:"last"`   // latest report
	// Acked: acknowledged, and not reported again since.
	Acked   bool       `json:"acked"`
	AckedAt *time.Time `json:"acked_at,omitempty"`
}

// activeAt says whether f still needs a look at now. Times read back from
// the file have no monotonic reading, so across a restart this compares wall
// clocks; within one process, a fault reported at a wrong wall time (a Pi
// before NTP sync) still lasts its full expiry, since time.Time.Sub then
// uses the monotonic clock.
func (f Fault) activeAt(now time.Time, expiry time.Duration) bool {
	return !f.Acked && now.Sub(f.Last) < expiry
}

// Options configure a Store. Zero fields take the defaults stated.
type Options struct {
	Expiry    time.Duration    // default DefaultExpiry
	SaveEvery time.Duration    // default DefaultSaveEvery
	Now       func() time.Time // the clock of Report; default time.Now
	Logger    *slog.Logger     // default slog.Default()
}

// Store is the record of faults. Its methods are safe from many goroutines,
// and a nil *Store accepts every call and records nothing, so a component
// may hold an optional one.
type Store struct {
	path string
	opts Options

	mu     sync.Mutex
	faults map[Kind]*Fault
	dirty  bool      // changes not saved yet
	saved  time.Time // when the file was last written (by opts.Now)
	// saveFails is the current run of failed saves at Report, for the log:
	// a full disk would otherwise log one at every report.
	saveFails retrylog.Run

	saveMu sync.Mutex // one save at a time, each writing the latest state
}

// file is the JSON document on disk.
type file struct {
	Version int     `json:"version"`
	Faults  []Fault `json:"faults"`
}

const fileVersion = 1

// Open reads the record at path. A missing file is an empty record; an
// unreadable or corrupt one is logged and replaced by an empty record. An
// empty path keeps the record in memory only. Open never fails: a record of
// faults must not be the reason recording stops.
func Open(path string, opts Options) *Store {
	defaults.Positive(&opts.Expiry, DefaultExpiry)
	defaults.Positive(&opts.SaveEvery, DefaultSaveEvery)
	defaults.Clock(&opts.Now)
	defaults.Logger(&opts.Logger)
	s := &Store{path: path, opts: opts, faults: map[Kind]*Fault{}, saveFails: retrylog.Run{Level: slog.LevelError}}
	if path == "" {
		return s
	}
	faults, err := load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		s.opts.Logger.Error("fault record unreadable; starting an empty one (faults it held are lost)",
			logkey.Path, path, logkey.Err, err)
		s.dirty = true
		if err := s.Flush(); err != nil {
			s.opts.Logger.Error("fault record: cannot replace the unreadable file", logkey.Err, err)
		}
	default:
		for _, f := range faults {
			s.faults[f.Kind] = &f
		}
	}
	return s
}

func load(path string) ([]Fault, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fault record: %w", err)
	}
	var doc file
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse fault record %s: %w", path, err)
	}
	if doc.Version != fileVersion {
		return nil, fmt.Errorf("fault record %s: version %d, want %d", path, doc.Version, fileVersion)
	}
	for _, f := range doc.Faults {
		if f.Kind == "" {
			return nil, fmt.Errorf("fault record %s: a fault without a kind", path)
		}
	}
	return doc.Faults, nil
}

// Report records that a fault of kind happened count times (records, frames;
// 1 for a single event) with detail saying where. It merges with earlier
// reports of the kind: the first time stays, the last time and the detail
// are this report's, counts add up, and an acknowledged fault is active
// again.
//
// Report is cheap enough for a hot path: it saves the record at once (one
// fsync) only when the fault was not active before; further reports of an
// active fault are saved at most every SaveEvery, and by Flush.
func (s *Store) Report(kind Kind, detail string, count int64) {
	if s == nil {
		return
	}
	count = max(count, 0)
	now := s.opts.Now()
	s.mu.Lock()
	f := s.faults[kind]
	fresh := f == nil || !f.activeAt(now, s.opts.Expiry)
	if f == nil {
		f = &Fault{Kind: kind, First: now}
		s.faults[kind] = f
	}
	f.Detail, f.Last, f.Count = detail, now, f.Count+count
	f.Acked, f.AckedAt = false, nil
	s.dirty = true
	due := fresh || now.Sub(s.saved) >= s.opts.SaveEvery || now.Before(s.saved)
	s.mu.Unlock()
	if due {
		err := s.Flush()
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.saveFails.Failed(context.Background(), s.opts.Logger.With("kind", kind), now,
				"fault record not saved; it is shown until lablog stops", "fault record still not saved", err)
		} else {
			s.saveFails.Ended(s.opts.Logger, now, "fault record saved again")
		}
	}
}

// Active lists the faults not acknowledged whose last report is less than
// the expiry before now, most recent first.
func (s *Store) Active(now time.Time) []Fault {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Fault
	for _, f := range s.faults {
		if f.activeAt(now, s.opts.Expiry) {
			out = append(out, *f)
		}
	}
	sortRecent(out)
	return out
}

// All lists every fault in the record, active or not, most recent first.
func (s *Store) All() []Fault {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, *f)
	}
	sortRecent(out)
	return out
}

// Counts is the total count of each kind ever reported (since the record
// was created).
func (s *Store) Counts() map[Kind]int64 {
	out := map[Kind]int64{}
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range s.faults {
		out[k] = f.Count
	}
	return out
}

// Ack acknowledges every fault reported so far, at now, and saves the
// record. A fault reported after Ack is active again. The acknowledgement
// holds in memory even when saving fails; the error says it was not saved.
func (s *Store) Ack(now time.Time) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	n := 0
	for _, f := range s.faults {
		if !f.Acked {
			at := now
			f.Acked, f.AckedAt = true, &at
			n++
		}
	}
	s.dirty = s.dirty || n > 0
	s.mu.Unlock()
	if n > 0 {
		s.opts.Logger.Info("faults acknowledged", "faults", n)
	}
	return s.Flush()
}

// Flush saves changes not saved yet. Call it before exiting, so counts
// reported since the last save are kept.
func (s *Store) Flush() error {
	if s == nil || s.path == "" {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	doc := file{Version: fileVersion, Faults: make([]Fault, 0, len(s.faults))}
	for _, f := range s.faults {
		doc.Faults = append(doc.Faults, *f)
	}
	s.dirty = false
	s.mu.Unlock()
	slices.SortFunc(doc.Faults, func(a, b Fault) int { return cmp.Compare(a.Kind, b.Kind) })

	err := writeAtomic(s.path, doc)
	s.mu.Lock()
	if err != nil {
		s.dirty = true // try again at the next report or flush
	} else {
		s.saved = s.opts.Now()
	}
	s.mu.Unlock()
	return err
}

// writeAtomic replaces path with doc: a crash leaves the old file or the
// new one, never a torn one.
func writeAtomic(path string, doc file) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode fault record: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save fault record: %w", err)
	}
	return nil
}

func sortRecent(fs []Fault) {
	slices.SortFunc(fs, func(a, b Fault) int {
		if c := b.Last.Compare(a.Last); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
}
