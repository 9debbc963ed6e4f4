package archive

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sys/unix"

	"github.com/practable/lablog/internal/platform/failpoint"
)

// DefaultRowGroupRows bounds a row group, and so the writer's memory: about
// 15 MB live heap measured while writing 700k typical (~160-byte) messages,
// against 29 MB with a single row group.
const DefaultRowGroupRows = 50_000

// RowGroupBytes also ends a row group, once its rows' text (raw, payload,
// raw bytes, details) reaches it, so the column buffers hold about this
// much whatever the size of the messages: 50,000 achievement logs of 2 KB
// would buffer over 100 MB. Lab traffic (~400 bytes of raw and payload a
// message) ends a row group near 21,000 rows.
const RowGroupBytes = 8 << 20

// Options tune a Writer. The zero value gives the defaults.
type Options struct {
	RowGroupRows int // rows per row group; DefaultRowGroupRows when <= 0
	// BufferID is the id of the buffer the records come from (16 lower-case
	// hex digits), in the file's name, metadata and buffer_id column; ""
	// for legacy records, which then get a legacy name and a null column.
	BufferID string
	// Revision, when > 0, marks a rewrite (see KeyRevision).
	Revision int
}

// Failpoints, in the order a write reaches them. FailMidWrite is hit once,
// right after the first row group is flushed to the temporary file (on the
// writer's encoding goroutine; a file smaller than one row group never
// reaches it). The other two are in Publish, around the rename.
const (
	FailMidWrite               = "archive-mid-write"
	FailAfterWriteBeforeRename = "archive-after-write-before-rename"
	FailAfterRenameBeforeSync  = "archive-after-rename-before-dirsync"
)

// Writer streams one stream's hour into a hidden temporary file next to its
// final place; Publish renames it into view. Use it from one goroutine (it
// encodes on a second one of its own, which Publish and Abort end).
type Writer struct {
	stream     string
	hour       time.Time
	bufferID   string
	revision   int
	root       *Root
	ownRoot    bool     // Create opened root for this writer alone
	dir        *os.File // the partition directory, held open
	tmp        string   // the temporary file's name in dir
	f          *os.File
	enc        encoder // holds the Parquet writer; writes the rows into it
	sum        *Checksum
	idColumn   *string
	first      uint64
	last       uint64
	frames     int64
	rows       int64
	batch      []Row // rows built, not yet handed to enc
	batchBytes int   // their text
	err        error // sticky: once a write failed the file is unusable
	done       bool
}

// Create starts the file of stream's hour under root, which must already
// exist (an absent drive must not turn into a directory on the SD card): it
// is OpenRoot(root, RequireNone) and Root.Create, for one file. A long run
// should hold a Root instead, which notices a drive that goes away.
func Create(root, stream string, hour time.Time, opts Options) (*Writer, error) {
	r, err := OpenRoot(root, RequireNone)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", label(stream, hour), err)
	}
	w, err := r.Create(stream, hour, opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	w.ownRoot = true
	return w, nil
}

func newWriter(r *Root, dir, f *os.File, tmp, stream string, hour time.Time, opts Options) *Writer {
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = DefaultRowGroupRows
	}
	pw := parquet.NewGenericWriter[Row](f,
		parquet.Compression(newZstdCodec()),
		parquet.MaxRowsPerRowGroup(int64(opts.RowGroupRows)),
		// Times and sequence numbers rise steadily: their differences
		// pack into a few bits, where zstd over plain 8-byte values left
		// 2.6 bytes a row on lab traffic (docs/performance-compaction.md).
		parquet.DefaultEncodingFor(parquet.Int64, &parquet.DeltaBinaryPacked),
		parquet.DefaultEncodingFor(parquet.Int32, &parquet.DeltaBinaryPacked),
	)
	return &Writer{stream: stream, hour: hour, bufferID: opts.BufferID, revision: opts.Revision, root: r, dir: dir, tmp: tmp, f: f,
		enc: encoder{pw: pw, groupRows: opts.RowGroupRows}, sum: NewChecksum(), idColumn: idColumn(opts.BufferID)}
}

func (w *Writer) wrap(err error) error {
	return fmt.Errorf("archive %s: %w", label(w.stream, w.hour), err)
}

// Add appends one entry. Entries must come in increasing sequence order.
func (w *Writer) Add(e Entry) error {
	switch {
	case w.err != nil:
		return w.err
	case w.done:
		return w.wrap(errors.New("add after publish or abort"))
	case e.Seq > math.MaxInt64:
		return w.wrap(fmt.Errorf("seq %d does not fit the int64 seq column", e.Seq))
	case e.Rec.Stream != "" && e.Rec.Stream != w.stream:
		return w.wrap(fmt.Errorf("seq %d belongs to stream %q", e.Seq, e.Rec.Stream))
	case w.frames > 0 && e.Seq <= w.last:
		return w.wrap(fmt.Errorf("seq %d after %d: entries must be added in increasing seq order", e.Seq, w.last))
	}
	n := len(w.batch)
	w.batch = appendRows(w.batch, w.idColumn, e)
	w.rows += int64(len(w.batch) - n)
	for i := range w.batch[n:] {
		w.batchBytes += w.batch[n+i].textBytes()
	}
	if len(w.batch) >= batchRows || w.batchBytes >= batchBytes {
		next, err := w.enc.hand(w.batch)
		w.batch, w.batchBytes = next, 0
		if err != nil {
			w.err = w.wrap(err)
			return w.err
		}
	}
	if w.frames == 0 {
		w.first = e.Seq
	}
	w.last = e.Seq
	w.frames++
	w.sum.Add(e.Seq, e.Rec.Kind, e.Rec.Data)
	return nil
}

// Rows returns the number of rows added so far.
func (w *Writer) Rows() int64 { return w.rows }

// Publish finishes the file and moves it to its final name. It returns the
// final path; when a file of that name already exists it is left untouched,
// the temporary file is removed, and the error wraps ErrExists: the caller
// should Verify the existing file instead.
func (w *Writer) Publish() (string, error) {
	if w.err != nil || w.done {
		w.Abort()
		if w.err != nil {
			return "", w.err
		}
		return "", w.wrap(errors.New("publish after publish or abort"))
	}
	if w.frames == 0 {
		w.Abort()
		return "", w.wrap(ErrEmpty)
	}
	err := w.enc.finish(w.batch)
	w.batch = nil
	if err != nil {
		w.err = w.wrap(err)
		w.Abort()
		return "", w.err
	}
	// In key order, so the same records always give the same bytes: a
	// file written again (an erasure re-run) is identical.
	meta := w.meta()
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		w.enc.pw.SetKeyValueMetadata(k, meta[k])
	}
	name := FileName(Name{Stream: w.stream, Hour: w.hour, BufferID: w.bufferID, First: w.first, Last: w.last, Revision: w.revision})
	final := filepath.Join(w.dir.Name(), name)
	if err := w.finish(name); err != nil {
		w.Abort()
		if errors.Is(err, ErrExists) {
			return final, w.wrap(fmt.Errorf("%s: %w", final, ErrExists))
		}
		return "", w.wrap(err)
	}
	w.done = true
	w.release()
	return final, nil
}

// finish completes the temporary file and renames it to name. The rename
// is relative to the held directory, right after a Check: a drive pulled
// while the file was written fails the file here.
func (w *Writer) finish(name string) error {
	if err := w.enc.pw.Close(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	if err := failpoint.Hit(FailAfterWriteBeforeRename); err != nil {
		return err
	}
	if err := w.root.Check(); err != nil {
		return err
	}
	if err := renameNoReplace(w.dir, w.tmp, name); err != nil {
		return err
	}
	if err := failpoint.Hit(FailAfterRenameBeforeSync); err != nil {
		return err
	}
	return w.dir.Sync()
}

func (w *Writer) meta() map[string]string {
	m := map[string]string{
		KeyStream:   w.stream,
		KeyHour:     w.hour.Format(time.RFC3339),
		KeyFirstSeq: strconv.FormatUint(w.first, 10),
		KeyLastSeq:  strconv.FormatUint(w.last, 10),
		KeyFrames:   strconv.FormatInt(w.frames, 10),
		KeyRows:     strconv.FormatInt(w.rows, 10),
		KeyChecksum: w.sum.String(),
		KeyFormat:   Format,
		KeyBufferID: w.bufferID,
	}
	if w.revision > 0 {
		m[KeyRevision] = strconv.Itoa(w.revision)
	}
	return m
}

// Abort removes the temporary file. It is safe to call more than once and
// after Publish (then it does nothing), so `defer w.Abort()` is the idiom.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.enc.abort() // before the file is closed under it
	_ = w.f.Close()
	_ = unix.Unlinkat(int(w.dir.Fd()), w.tmp, 0)
	w.release()
}

// release closes the directories the writer holds.
func (w *Writer) release() {
	_ = w.dir.Close()
	if w.ownRoot {
		_ = w.root.Close()
	}
}
