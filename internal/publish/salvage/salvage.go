// Package salvage archives the intact records of a quarantined buffer file
// (see buffer.Open), exactly once, and says what could not be read.
//
// Exactly once rests on the archive's identity: records keep their buffer
// id, stream and seq, so their files get the names a compaction would have
// given them. Before writing a group, the archive files of the same stream,
// hour and buffer id are verified and their frames read; a record such a
// file already holds with the same bytes is not written again (a
// compaction published it before the quarantine, or an earlier salvage
// did), and one it holds with other bytes is a conflict, reported and not
// written. A second salvage of the same file therefore adds nothing.
package salvage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// Options configure a salvage.
type Options struct {
	RowGroupRows int // bound on Parquet row groups; archive's default when 0
	Logger       *slog.Logger
	// Filter, when set, is applied to every record read, as the compactor
	// applies its own (the tombstone list): a record it leaves out is not
	// archived and counts as neither archived nor lost.
	Filter func(seq uint64, r frame.Record) (frame.Record, bool)
}

// Report is what a salvage of one file did.
type Report struct {
	File     string
	Files    int   // archive files published
	Archived int64 // records written to them
	Already  int64 // records the archive held already, with the same bytes
	// Unreadable is the number of records the buffer's running counts list
	// that could not be read. Without the counts (CountsRead false) it is
	// only the records of damaged blocks: the true loss is unknown.
	Unreadable int64
	CountsRead bool
	Conflicts  int64    // records an archive file holds with other bytes: not written
	Filtered   int64    // records of erased users (Options.Filter) left out
	Lost       []string // what could not be read: pages, buckets, blocks
}

// Problems reports whether some records could not be read or archived,
// or how many is unknown. Damage elsewhere (a consumer's side bucket) is
// listed in Lost but loses no record.
func (r Report) Problems() bool {
	return r.Unreadable > 0 || !r.CountsRead || r.Conflicts > 0
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salvaged %s: %d records archived in %d files, %d already in the archive", r.File, r.Archived, r.Files, r.Already)
	if r.CountsRead {
		fmt.Fprintf(&b, ", %d records unreadable", r.Unreadable)
	} else {
		fmt.Fprintf(&b, ", %d records unreadable at least (the buffer's counts are unreadable)", r.Unreadable)
	}
	if r.Conflicts > 0 {
		fmt.Fprintf(&b, ", %d records conflict with archive files (not archived)", r.Conflicts)
	}
	if r.Filtered > 0 {
		fmt.Fprintf(&b, ", %d records of erased users left out", r.Filtered)
	}
	b.WriteString("\n")
	for _, l := range r.Lost {
		fmt.Fprintf(&b, "  not read: %s\n", l)
	}
	return b.String()
}

// File archives every intact record of the quarantined buffer file at path
// under root. It never changes the file. An error means the archive could
// not be written (a missing or full drive): run it again; what could not be
// read is in the report, not an error.
func File(ctx context.Context, root *archive.Root, path string, opts Options) (Report, error) {
	rep := Report{File: path}
	s, err := buffer.ReadStranded(path)
	if err != nil {
		return rep, err
	}
	defer s.Close()
	rep.CountsRead = s.CountsRead
	rep.Lost = append(rep.Lost, s.Lost...)
	for _, g := range s.Groups() {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := group(ctx, root, s, g, opts, &rep); err != nil {
			return rep, fmt.Errorf("salvage %s: %s: %w", path, g, err)
		}
	}
	return rep, nil
}

// group archives the intact records of g that the archive does not hold.
func group(ctx context.Context, root *archive.Root, s *buffer.Stranded, g buffer.Group, opts Options, rep *Report) error {
	held, err := archived(root, g, opts.logger())
	if err != nil {
		return err
	}
	var w *archive.Writer // made at the first record to write
	defer func() {
		if w != nil {
			w.Abort()
		}
	}()
	var read, written int64
	damaged, err := s.Scan(g, func(seq uint64, r frame.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		read++
		if opts.Filter != nil {
			var keep bool
			if r, keep = opts.Filter(seq, r); !keep {
				rep.Filtered++
				return nil
			}
		}
		if sum, ok := held[seq]; ok {
			if sum == frameSum(r.Kind, r.Data) {
				rep.Already++
			} else {
				rep.Conflicts++
			}
			return nil
		}
		if w == nil {
			var err error
			if w, err = root.Create(g.Stream, g.Hour, archive.Options{RowGroupRows: opts.RowGroupRows, BufferID: g.BufferID}); err != nil {
				return err
			}
		}
		written++
		return w.Add(archive.Entry{Seq: seq, Rec: r})
	})
	if err != nil {
		return err
	}
	var inDamaged int64
	for _, d := range damaged {
		inDamaged += d.Records
		rep.Lost = append(rep.Lost, fmt.Sprintf("%s: block %x (%d records by its header): %v", g, d.Key, d.Records, d.Err))
	}
	switch {
	case g.Records >= 0:
		rep.Unreadable += max(0, g.Records-read)
	default:
		rep.Unreadable += inDamaged
	}
	if written == 0 {
		return nil
	}
	path, err := w.Publish()
	if err != nil {
		return err
	}
	if _, err := archive.Verify(path); err != nil {
		return fmt.Errorf("published file does not verify: %w", err)
	}
	rep.Files++
	rep.Archived += written
	return nil
}

// archived is the sum of every frame of g's identity that the archive
// holds, by seq. A file that does not verify is set aside as <name>.bad, as
// the compactor does, so its records are archived again.
func archived(root *archive.Root, g buffer.Group, log *slog.Logger) (map[uint64][sha256.Size]byte, error) {
	held := map[uint64][sha256.Size]byte{}
	dir := archive.PartitionDir(root.Path(), g.Stream, g.Hour)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return held, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name, ok := archive.ParseFileName(e.Name())
		if !ok || name.Stream != g.Stream || !name.Hour.Equal(g.Hour) || name.BufferID != g.BufferID {
			continue
		}
		path := filepath.Join(dir, e.Name())
		found := map[uint64][sha256.Size]byte{}
		_, err := archive.VerifyFrames(path, func(seq uint64, kind frame.Kind, data []byte) error {
			found[seq] = frameSum(kind, data)
			return nil
		})
		if err != nil {
			if err := root.Check(); err != nil {
				return nil, err
			}
			aside := path + ".bad"
			log.Error("archive file does not verify; setting it aside and archiving its records again",
				logkey.Path, path, "aside", aside, logkey.Err, err)
			if err := os.Rename(path, aside); err != nil {
				return nil, fmt.Errorf("set aside %s: %w", path, err)
			}
			continue
		}
		for seq, sum := range found {
			held[seq] = sum
		}
	}
	return held, nil
}

func frameSum(kind frame.Kind, data []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte{byte(kind)})
	h.Write(data)
	return [sha256.Size]byte(h.Sum(nil))
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// Pending salvages every file quarantined beside the buffer at bufferPath
// that is not yet marked salvaged, and marks each one done. The daemon and
// lablog compact run it before each compaction, so a technician need do
// nothing; a file whose archive could not be written stays pending.
func Pending(ctx context.Context, root *archive.Root, bufferPath string, opts Options) ([]Report, error) {
	files, err := buffer.QuarantinedFiles(bufferPath)
	if err != nil {
		return nil, err
	}
	var reports []Report
	for _, f := range files {
		if buffer.Salvaged(f) {
			continue
		}
		rep, err := Salvage(ctx, root, f, opts)
		if err != nil {
			return reports, err
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

// Salvage is File, then logs the report and marks the file salvaged.
func Salvage(ctx context.Context, root *archive.Root, path string, opts Options) (Report, error) {
	log := opts.logger()
	rep, err := File(ctx, root, path, opts)
	if err != nil {
		return rep, err
	}
	marker, err := buffer.MarkSalvaged(path, []byte(rep.String()))
	if err != nil {
		return rep, err
	}
	attrs := []any{logkey.Path, path, logkey.Records, rep.Archived, "files", rep.Files, "already", rep.Already,
		"unreadable", rep.Unreadable, "report", marker}
	if rep.Problems() {
		log.Error("SALVAGED A QUARANTINED BUFFER, BUT NOT ALL OF IT: what could not be read is listed in the report",
			append(attrs, "counts_read", rep.CountsRead, "conflicts", rep.Conflicts, "not_read", len(rep.Lost))...)
	} else {
		log.Info("salvaged a quarantined buffer: every record is archived", attrs...)
	}
	return rep, nil
}
