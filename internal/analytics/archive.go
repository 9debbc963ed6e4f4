package analytics

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/statement"
)

// Archived remembers which records the archive holds, by identity (buffer
// id, stream, seq range of each file), so the buffer's copy of a record
// that was published but not yet deleted (a crash in between) is not
// counted twice.
type Archived map[[2]string][][2]uint64

func (a Archived) has(bufferID, stream string, seq uint64) bool {
	for _, r := range a[[2]string{bufferID, stream}] {
		if r[0] <= seq && seq <= r[1] {
			return true
		}
	}
	return false
}

// ArchiveFiles lists the Parquet files under root, sorted by path (stream,
// then date, then hour and sequence).
func ArchiveFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", root, err)
	}
	sort.Strings(files)
	return files, nil
}

// overlaps reports whether the hour starting at h meets w.
func (w Window) overlaps(h time.Time) bool {
	return (w.Until.IsZero() || h.Before(w.Until)) && (w.Since.IsZero() || h.Add(time.Hour).After(w.Since))
}

// ReadArchive adds every message row of the archive under root received
// inside w. progress, if set, is called after each file with the files
// done and their total. It returns what the archive holds, for ReadBuffer.
func (b *Builder) ReadArchive(root string, w Window, progress func(done, total int)) (Archived, error) {
	files, err := ArchiveFiles(root)
	if err != nil {
		return nil, err
	}
	held := Archived{}
	for i, path := range files {
		meta, err := archive.ReadMeta(path)
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		k := [2]string{meta.BufferID, meta.Stream}
		held[k] = append(held[k], [2]uint64{meta.FirstSeq, meta.LastSeq})
		if w.overlaps(meta.Hour) {
			if _, err := archive.ScanMessages(path, func(r *archive.MessageRow) error { b.addRow(r, w); return nil }); err != nil {
				return nil, fmt.Errorf("archive: %w", err)
			}
		}
		if progress != nil {
			progress(i+1, len(files))
		}
	}
	return held, nil
}

// addRow adds an archive row: one message of a text frame, or a statement.
func (b *Builder) addRow(r *archive.MessageRow, w Window) {
	if r.Kind != archive.KindMessage && r.Kind != archive.KindStatement || !w.Contains(time.UnixMicro(r.ReceivedAt)) {
		return
	}
	if r.Kind == archive.KindStatement {
		b.AddEvent(eventFromRow(r))
		return
	}
	switch r.Part {
	case 0:
		b.Stats.Frames++
	case 1:
		b.Stats.GluedFrames++
		b.Stats.GluedMessages += 2
	default:
		b.Stats.GluedMessages++
	}
	if r.Error != nil {
		b.Stats.Messages++
		b.Stats.Unparsed++
		return
	}
	b.Add(Message{User: r.User, Exp: r.Exp, Course: r.Course, Hardware: r.Hardware, Type: r.Type, T: r.T, Payload: r.Payload, Arrival: r.ReceivedAt})
}

// ReadBuffer adds the text frames and statements of the buffer file at path (the hour the
// compactor has not archived yet) received inside w, except records the
// archive already holds. The buffer is opened read-only; while lablog run
// holds it this fails with an error wrapping buffer.ErrLocked.
func (b *Builder) ReadBuffer(path string, w Window, held Archived) error {
	db, err := buffer.OpenReadOnly(path, buffer.Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer db.Close()
	inWindow := func(g buffer.Group) bool { return w.overlaps(g.Hour) }
	damaged, err := db.ScanGroups(inWindow, func(g buffer.Group, seq uint64, r frame.Record) error {
		if r.Kind != frame.Text && r.Kind != frame.Statement || !w.Contains(r.Received) || held.has(g.BufferID, g.Stream, seq) {
			return nil
		}
		if r.Kind == frame.Statement {
			b.AddEvent(EventFromCall(statement.ParseCall(frame.SplitStatement(r.Data)), r.Received.UnixMicro()))
			return nil
		}
		b.AddFrame(r.Data, r.Received.UnixMicro())
		return nil
	})
	b.Stats.DamagedBlocks += int64(damaged)
	return err
}
