package subject

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// FileCount is what a scan of one file found of a user.
type FileCount struct {
	Meta    archive.Meta
	Rows    int64 // the user's rows
	Frames  int64 // frames left with at least one row of another user
	Dropped int64 // frames with no row left
	// New is the name the file gets once rewritten without the user:
	// same stream, hour and buffer, the kept frames' seq range, the next
	// revision. Zero (Stream "") when no frame is left.
	New archive.Name
}

// Count reads only the index columns of the file at path and counts m's
// rows in it, working out the rewritten file's name on the way.
func Count(path string, m Matcher) (FileCount, error) {
	var c FileCount
	var cur int64 = -1
	curKept, any := false, false
	var first, last uint64
	end := func() {
		if cur < 0 {
			return
		}
		if !curKept {
			c.Dropped++
			return
		}
		c.Frames++
		if !any {
			first, any = uint64(cur), true
		}
		last = uint64(cur)
	}
	meta, err := archive.ScanMessages(path, func(r *archive.MessageRow) error {
		if r.Seq != cur {
			end()
			cur, curKept = r.Seq, false
		}
		if r.User != nil && m(*r.User) {
			c.Rows++
		} else {
			curKept = true
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	end()
	c.Meta = meta
	if any {
		c.New = archive.Name{Stream: meta.Stream, Hour: meta.Hour, BufferID: meta.BufferID, First: first, Last: last, Revision: meta.Revision + 1}
	}
	return c, nil
}

// Rewritten is the outcome of Rewrite.
type Rewritten struct {
	Path         string // the new file; "" when no row was left
	Rows, Frames int64  // in the new file
	Dropped      int64  // rows of the user left out
}

// Rewrite writes the file at path again without m's rows, under root (which
// must be the tree the file is in, or another tree for a copy), as the next
// revision: a new, verified file published atomically beside the old one,
// which it leaves for the caller to remove. A new file already there from
// an interrupted run is verified and kept.
func Rewrite(root *archive.Root, path string, m Matcher, rowGroupRows int) (Rewritten, error) {
	meta, err := archive.ReadMeta(path)
	if err != nil {
		return Rewritten{}, err
	}
	w, err := root.Create(meta.Stream, meta.Hour, archive.Options{RowGroupRows: rowGroupRows, BufferID: meta.BufferID, Revision: meta.Revision + 1})
	if err != nil {
		return Rewritten{}, err
	}
	defer w.Abort()
	var out Rewritten
	var rec frame.Record
	var seq int64 = -1
	flush := func() error {
		if seq < 0 {
			return nil
		}
		kept, keep, dropped := Filter(uint64(seq), rec, m)
		out.Dropped += int64(dropped)
		if !keep {
			return nil
		}
		out.Frames++
		return w.Add(archive.Entry{Seq: uint64(seq), Rec: kept})
	}
	_, err = archive.Scan(path, func(r *archive.Row) error {
		if r.Seq == seq {
			rec.Data = append(rec.Data, r.FrameBytes()...)
			return nil
		}
		if err := flush(); err != nil {
			return err
		}
		kind, ok := archive.KindOf(r.Kind)
		if !ok {
			return fmt.Errorf("seq %d: unknown kind %q", r.Seq, r.Kind)
		}
		seq = r.Seq
		rec = frame.Record{Stream: meta.Stream, Received: time.UnixMicro(r.ReceivedAt).UTC(), ClockSynced: r.ClockSynced,
			Kind: kind, Data: append(rec.Data[:0], r.FrameBytes()...)}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return out, fmt.Errorf("rewrite %s: %w", path, err)
	}
	out.Rows = w.Rows()
	if out.Frames == 0 {
		return out, nil
	}
	newPath, err := w.Publish()
	if err != nil && !errors.Is(err, archive.ErrExists) {
		return out, fmt.Errorf("rewrite %s: %w", path, err)
	}
	got, verr := archive.Verify(newPath)
	if verr != nil {
		return out, fmt.Errorf("rewrite %s: new file: %w", path, verr)
	}
	if got.Rows != out.Rows || got.Frames != out.Frames {
		return out, fmt.Errorf("rewrite %s: %s holds %d rows in %d frames, the rewrite %d in %d", path, newPath, got.Rows, got.Frames, out.Rows, out.Frames)
	}
	out.Path = newPath
	return out, nil
}

// FileSHA256 is the hex SHA-256 of a file's bytes: what the report and
// the bucket's checksums name a file by.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// relPath is path relative to root, with forward slashes: the form the
// report, the journal and the bucket keys use.
func relPath(root, path string) (string, error) {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}
