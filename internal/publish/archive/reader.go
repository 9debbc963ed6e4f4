package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/practable/lablog/internal/record/frame"
)

var rowSchema = parquet.SchemaOf(Row{})

// columnsBefore returns Row's columns less the ones named: the columns of
// an older format, in the order that format wrote them.
func columnsBefore(added ...[]string) []parquet.Field {
	var cols []parquet.Field
	for _, f := range rowSchema.Fields() {
		if !slices.ContainsFunc(added, func(names []string) bool { return slices.Contains(names, f.Name()) }) {
			cols = append(cols, f)
		}
	}
	return cols
}

var (
	columnsV2 = columnsBefore(addedV3)
	columnsV1 = columnsBefore(addedV3, addedV2)
)

// sameColumns says whether a file's schema has exactly cols: the same
// names, types and repetition, in the same order.
func sameColumns(schema *parquet.Schema, cols []parquet.Field) bool {
	got := schema.Fields()
	if len(got) != len(cols) {
		return false
	}
	for i, c := range cols {
		if got[i].Name() != c.Name() || !parquet.EqualNodes(got[i], c) {
			return false
		}
	}
	return true
}

// ReadRows reads a whole file into memory: for tests and tools. Verify
// streams instead.
func ReadRows(path string) ([]Row, Meta, error) {
	var rows []Row
	meta, err := scan(path, func(r *Row) error {
		rows = append(rows, *r)
		return nil
	})
	return rows, meta, err
}

// Scan reads a file's metadata and then feeds fn every row in order,
// streaming, so a whole file never sits in memory. fn must not keep the
// row's pointers: the batch they point into is reused.
func Scan(path string, fn func(*Row) error) (Meta, error) { return scan(path, fn) }

// MessageRow is the part of a Row that says what a message was: reading
// only these columns (not the raw text) is what makes ScanMessages fast.
// scanMessages names the column each field is read from; the fields mean
// what Row's of the same name mean, but Payload is bytes, nil when null.
type MessageRow struct {
	ReceivedAt int64 // microseconds since the epoch, UTC
	Seq        int64
	Part       int32
	Kind       string
	User       *string
	Exp        *string
	Hardware   *string
	Course     *string
	Type       *string
	T          *int64 // milliseconds since the epoch, as sent
	Payload    []byte
	Error      *string
	// A statement's verb and graph node (format 3; nil in older files).
	Verb      *string
	GraphNode *string
}

// ScanMessages is Scan reading only the columns of MessageRow, for every
// row (events and binary frames included: see Kind), column by column
// rather than through row reconstruction, which is several times faster.
// fn must not keep the row's pointers.
func ScanMessages(path string, fn func(*MessageRow) error) (Meta, error) {
	return withFile(path, func(pf *parquet.File) error { return scanMessages(path, pf, fn) })
}

func scanMessages(path string, pf *parquet.File, fn func(*MessageRow) error) error {
	in := interner{}
	columns := []column[MessageRow]{
		{name: "received_at", set: func(r *MessageRow, v parquet.Value) { r.ReceivedAt = v.Int64() }},
		{name: "seq", set: func(r *MessageRow, v parquet.Value) { r.Seq = v.Int64() }},
		{name: "part", set: func(r *MessageRow, v parquet.Value) { r.Part = v.Int32() }},
		{name: "kind", set: func(r *MessageRow, v parquet.Value) { r.Kind = *in.string(v) }},
		{name: "user", set: func(r *MessageRow, v parquet.Value) { r.User = in.string(v) }},
		{name: "exp", set: func(r *MessageRow, v parquet.Value) { r.Exp = in.string(v) }},
		{name: "hardware", set: func(r *MessageRow, v parquet.Value) { r.Hardware = in.string(v) }},
		{name: "course", set: func(r *MessageRow, v parquet.Value) { r.Course = in.string(v) }},
		{name: "type", set: func(r *MessageRow, v parquet.Value) { r.Type = in.string(v) }},
		{name: "t", set: func(r *MessageRow, v parquet.Value) { t := v.Int64(); r.T = &t }},
		{name: "payload", set: func(r *MessageRow, v parquet.Value) { r.Payload = copyBytes(v) }},
		{name: "error", set: func(r *MessageRow, v parquet.Value) { r.Error = newString(v) }},
		{name: "verb", since: Format, set: func(r *MessageRow, v parquet.Value) { r.Verb = in.string(v) }},
		{name: "graph_node", since: Format, set: func(r *MessageRow, v parquet.Value) { r.GraphNode = in.string(v) }},
	}
	return scanColumns(path, pf, columns, fn)
}

// column is one column that scanColumns reads into rows of R: set is called
// with each non-null value. A column added by a later format (since) may be
// missing from a file, and then reads as null.
type column[R any] struct {
	name  string
	since string
	set   func(r *R, v parquet.Value)
}

// scanColumns reads each row group's columns into rows of R, one column
// after the other, then feeds fn the rows in order. Reading pages' values
// straight into the fields skips parquet-go's row reconstruction and
// conversion, which cost several times more. The metadata check has
// already matched the file's columns to its format. fn must not keep the
// row's pointers: the rows are reused.
func scanColumns[R any](path string, pf *parquet.File, columns []column[R], fn func(*R) error) error {
	index := make([]int, len(columns))
	for i, c := range columns {
		leaf, ok := pf.Schema().Lookup(c.name)
		switch {
		case ok:
			index[i] = leaf.ColumnIndex
		case c.since != "":
			index[i] = -1
		default:
			return fmt.Errorf("%s: %w: no column %s", path, ErrMetadata, c.name)
		}
	}
	if err := checkPages(pf, slices.DeleteFunc(slices.Clone(index), func(i int) bool { return i < 0 })); err != nil {
		return fmt.Errorf("%s: %w: %w", path, ErrCorrupt, err)
	}
	values := make([]parquet.Value, 1024)
	var rows []R
	for _, rg := range pf.RowGroups() {
		rows = slices.Grow(rows[:0], int(rg.NumRows()))[:rg.NumRows()]
		clear(rows)
		chunks := rg.ColumnChunks()
		for i, c := range columns {
			if index[i] < 0 {
				continue
			}
			if err := readColumn(chunks[index[i]], values, rows, c.set); err != nil {
				return fmt.Errorf("%s: column %s: %w: %w", path, c.name, ErrCorrupt, err)
			}
		}
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return nil
}

// readColumn sets every non-null value of a flat column chunk into rows,
// in row order.
func readColumn[R any](chunk parquet.ColumnChunk, values []parquet.Value, rows []R, set func(*R, parquet.Value)) error {
	pages := chunk.Pages()
	defer pages.Close()
	row := 0
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(values)
			for _, v := range values[:n] {
				if row >= len(rows) {
					parquet.Release(p)
					return fmt.Errorf("more values than the %d rows", len(rows))
				}
				if !v.IsNull() {
					set(&rows[row], v)
				}
				row++
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
	if row != len(rows) {
		return fmt.Errorf("%d values for %d rows", row, len(rows))
	}
	return nil
}

// interner shares one string per value of a dictionary column, which
// repeats a few values.
type interner map[string]*string

func (in interner) string(v parquet.Value) *string {
	if p, ok := in[string(v.ByteArray())]; ok {
		return p
	}
	p := newString(v)
	in[*p] = p
	return p
}

// newString copies a value's bytes: the page they sit in is reused.
func newString(v parquet.Value) *string { s := string(v.ByteArray()); return &s }

// copyBytes copies a value's bytes, never nil: a set empty value is not a
// null one.
func copyBytes(v parquet.Value) []byte {
	return append(make([]byte, 0, len(v.ByteArray())), v.ByteArray()...)
}

// ReadMeta reads only a file's footer metadata.
func ReadMeta(path string) (Meta, error) {
	return withFile(path, nil)
}

// Verify checks a published file against itself: footer metadata present
// and well formed, the file name agreeing with it, row and frame counts,
// the sequence range, each frame's parts 0..n-1, and the checksum of the
// frames rebuilt from the rows. Errors wrap ErrCorrupt, ErrMetadata,
// ErrMismatch or ErrChecksum.
func Verify(path string) (Meta, error) { return VerifyFrames(path, nil) }

// VerifyFrames is Verify that also hands fn, when set, each frame it
// rebuilds from the rows, in order; fn must not keep data.
func VerifyFrames(path string, fn func(seq uint64, kind frame.Kind, data []byte) error) (Meta, error) {
	v := verifier{sum: NewChecksum(), frame: fn}
	meta, err := withFile(path, func(pf *parquet.File) error {
		return scanColumns(path, pf, frameColumns(), func(f *frameRow) error {
			r := Row{BufferID: f.BufferID, Seq: f.Seq, Part: f.Part, Kind: f.Kind, Raw: f.Raw, RawBytes: f.RawBytes,
				Error: f.Error, Detail: f.Detail, Query: f.Query}
			return v.row(&r)
		})
	})
	if err != nil {
		return meta, err
	}
	if err := v.end(); err != nil {
		return meta, fmt.Errorf("%s: %w", path, err)
	}
	if err := v.check(path, meta); err != nil {
		return meta, fmt.Errorf("%s: %w", path, err)
	}
	return meta, nil
}

// frameRow is the part of a Row that Verify reads: the columns that hold a
// frame's bytes and say where it goes, each as in Row. Payload and the
// parsed fields are not read: decompressing and rebuilding them for nothing
// made the check after every publish cost a third of a compaction. A row
// group's worth is held at a time, so it is kept small.
type frameRow struct {
	BufferID *string
	Seq      int64
	Part     int32
	Kind     string
	Raw      *string
	RawBytes []byte
	Error    *string
	Detail   *string
	Query    *string
}

// frameColumns reads frameRow's columns; those an older format lacks
// (buffer_id, detail, query) read as null.
func frameColumns() []column[frameRow] {
	in := interner{}
	return []column[frameRow]{
		{name: "buffer_id", since: FormatV2, set: func(r *frameRow, v parquet.Value) { r.BufferID = in.string(v) }},
		{name: "seq", set: func(r *frameRow, v parquet.Value) { r.Seq = v.Int64() }},
		{name: "part", set: func(r *frameRow, v parquet.Value) { r.Part = v.Int32() }},
		{name: "kind", set: func(r *frameRow, v parquet.Value) { r.Kind = *in.string(v) }},
		{name: "raw", set: func(r *frameRow, v parquet.Value) { r.Raw = newString(v) }},
		{name: "raw_bytes", set: func(r *frameRow, v parquet.Value) { r.RawBytes = copyBytes(v) }},
		{name: "error", set: func(r *frameRow, v parquet.Value) { r.Error = newString(v) }},
		{name: "detail", since: FormatV2, set: func(r *frameRow, v parquet.Value) { r.Detail = newString(v) }},
		{name: "query", since: Format, set: func(r *frameRow, v parquet.Value) { r.Query = newString(v) }},
	}
}

// verifier rebuilds frames from the rows, one at a time, in file order.
type verifier struct {
	bufferID *string // the first row's; every row must have the same
	sum      *Checksum
	rows     int64
	frames   int64
	first    int64
	last     int64
	cur      Row // first row of the current frame
	parts    int32
	data     []byte
	started  bool
	frame    func(seq uint64, kind frame.Kind, data []byte) error
}

func (v *verifier) row(r *Row) error {
	if err := rowShape(r); err != nil {
		return fmt.Errorf("%w: seq %d part %d: %v", ErrMismatch, r.Seq, r.Part, err)
	}
	if v.rows == 0 {
		v.bufferID = r.BufferID
	} else if !sameID(r.BufferID, v.bufferID) {
		return fmt.Errorf("%w: seq %d part %d: buffer_id %s after %s", ErrMismatch, r.Seq, r.Part, showID(r.BufferID), showID(v.bufferID))
	}
	v.rows++
	if v.started && r.Seq == v.cur.Seq {
		if r.Part != v.parts || r.Kind != v.cur.Kind {
			return fmt.Errorf("%w: seq %d: part %d (%s) where part %d (%s) was expected", ErrMismatch, r.Seq, r.Part, r.Kind, v.parts, v.cur.Kind)
		}
		v.parts++
		v.data = r.appendFrameBytes(v.data)
		return nil
	}
	if v.started && r.Seq <= v.cur.Seq {
		return fmt.Errorf("%w: seq %d after seq %d", ErrMismatch, r.Seq, v.cur.Seq)
	}
	if r.Part != 0 {
		return fmt.Errorf("%w: seq %d starts at part %d", ErrMismatch, r.Seq, r.Part)
	}
	if err := v.end(); err != nil {
		return err
	}
	if !v.started {
		v.first, v.started = r.Seq, true
	}
	v.cur, v.parts, v.last = *r, 1, r.Seq
	v.data = r.appendFrameBytes(v.data[:0])
	v.frames++
	return nil
}

// end hashes the frame in progress.
func (v *verifier) end() error {
	if !v.started || v.parts == 0 {
		return nil
	}
	k, ok := kindOf(v.cur.Kind)
	if !ok {
		return fmt.Errorf("%w: seq %d: unknown kind %q", ErrMismatch, v.cur.Seq, v.cur.Kind)
	}
	v.sum.Add(uint64(v.cur.Seq), k, v.data)
	v.parts = 0
	if v.frame != nil {
		return v.frame(uint64(v.cur.Seq), k, v.data)
	}
	return nil
}

// check compares what the rows said with the footer and the file name.
func (v *verifier) check(path string, m Meta) error {
	switch {
	case v.rows != m.Rows:
		return fmt.Errorf("%w: %d rows, metadata says %d", ErrMismatch, v.rows, m.Rows)
	case v.frames != m.Frames:
		return fmt.Errorf("%w: %d frames, metadata says %d", ErrMismatch, v.frames, m.Frames)
	case v.frames > 0 && (uint64(v.first) != m.FirstSeq || uint64(v.last) != m.LastSeq):
		return fmt.Errorf("%w: seqs %d-%d, metadata says %d-%d", ErrMismatch, v.first, v.last, m.FirstSeq, m.LastSeq)
	case v.rows > 0 && !sameID(v.bufferID, idColumn(m.BufferID)):
		// Legacy records have a null buffer_id, never "".
		return fmt.Errorf("%w: rows have buffer_id %s, metadata says %q", ErrMismatch, showID(v.bufferID), m.BufferID)
	}
	if want := FileName(m.Name()); filepath.Base(path) != want {
		return fmt.Errorf("%w: metadata says the name should be %s", ErrMismatch, want)
	}
	if got := v.sum.String(); got != m.Checksum {
		return fmt.Errorf("%w: rows hash to %s, metadata says %s", ErrChecksum, got, m.Checksum)
	}
	return nil
}

// idColumn is the buffer_id column's value for a buffer id.
func idColumn(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

func sameID(a, b *string) bool { return a == b || a != nil && b != nil && *a == *b }

func showID(id *string) string {
	if id == nil {
		return "null"
	}
	return strconv.Quote(*id)
}

// rowShape checks that a row holds its bytes where its kind says.
func rowShape(r *Row) error {
	switch {
	case r.Kind == KindMessage:
		if (r.Raw == nil) == (r.RawBytes == nil) {
			return errors.New("a message needs exactly one of raw and raw_bytes")
		}
	case r.Kind == KindStatement:
		if (r.Raw == nil) == (r.RawBytes == nil) || r.Query == nil {
			return errors.New("a statement needs its query and exactly one of raw and raw_bytes")
		}
	case r.Kind == "binary":
		if r.RawBytes == nil || r.Raw != nil {
			return errors.New("a binary frame needs raw_bytes and no raw")
		}
	default:
		// Format 1 kept an event's detail in error, format 2 in detail.
		if (r.Detail == nil) == (r.Error == nil) || r.Raw != nil {
			return errors.New("an event needs its detail (in detail, or in error in format 1) and no raw")
		}
	}
	return nil
}

// scan opens a file, reads its metadata and feeds fn every row in order,
// streaming in small batches so a whole hour never sits in memory.
func scan(path string, fn func(*Row) error) (Meta, error) {
	return withFile(path, func(pf *parquet.File) error {
		if err := checkPages(pf, nil); err != nil {
			return fmt.Errorf("%s: %w: %w", path, ErrCorrupt, err)
		}
		r := parquet.NewGenericReader[Row](pf)
		defer r.Close()
		batch := make([]Row, 256)
		for {
			clear(batch) // the reader may leave old pointers in place of nulls
			n, err := r.Read(batch)
			for i := range batch[:n] {
				if err := fn(&batch[i]); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w: %w", path, ErrCorrupt, err)
			}
		}
	})
}

// withFile opens a file, reads its metadata and, when read is set, runs
// read over it. A panic inside the Parquet reader becomes an ErrCorrupt
// error: a garbled footer or page index panics in open, garbled pages in
// read.
func withFile(path string, read func(*parquet.File) error) (meta Meta, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w: %v", path, ErrCorrupt, p)
		}
	}()
	f, pf, err := open(path)
	if err != nil {
		return Meta{}, err
	}
	defer f.Close()
	if meta, err = metaOf(path, pf); err != nil || read == nil {
		return meta, err
	}
	return meta, read(pf)
}

// open opens a Parquet file whose footer and page index passed checkFooter
// and checkPageIndex. parquet.OpenFile reads the page index only once it
// is checked, which needs the footer it decodes; the index is then decoded
// as OpenFile would have, so damage there is still an error.
func open(path string) (f *os.File, pf *parquet.File, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	pages, err := checkFooter(f, fi.Size())
	if err == nil {
		pf, err = parquet.OpenFile(f, fi.Size(), parquet.SkipPageIndex(true))
	}
	if err == nil {
		err = checkPageIndex(f, pf.Metadata(), pages)
	}
	if err == nil {
		_, _, err = pf.ReadPageIndex()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %w", path, ErrCorrupt, err)
	}
	return f, pf, nil
}

// metaOf parses the lablog.* keys and checks the schema is the one of the
// file's format.
func metaOf(path string, pf *parquet.File) (Meta, error) {
	bad := func(format string, args ...any) (Meta, error) {
		return Meta{}, fmt.Errorf("%s: %w: %s", path, ErrMetadata, fmt.Sprintf(format, args...))
	}
	keys := []string{KeyStream, KeyHour, KeyFirstSeq, KeyLastSeq, KeyFrames, KeyRows, KeyChecksum, KeyFormat}
	format, _ := pf.Lookup(KeyFormat)
	columns := rowSchema.Fields()
	switch format {
	case Format:
		keys = append(keys, KeyBufferID)
	case FormatV2:
		keys = append(keys, KeyBufferID)
		columns = columnsV2
	case FormatV1:
		columns = columnsV1
	case "":
		return bad("missing key %s", KeyFormat)
	default:
		return bad("%s is %q, this build reads %q, %q and %q", KeyFormat, format, FormatV1, FormatV2, Format)
	}
	if !sameColumns(pf.Schema(), columns) {
		return bad("schema is not lablog's format %s", format)
	}
	// Decoding pages with a codec lablog never wrote is not safe: on bytes
	// that are not lz4, parquet-go's lz4 decoder grows its buffer without
	// bound (a flipped bit in a footer ran a test out of memory).
	for _, rg := range pf.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if codec := c.MetaData.Codec; codec != pageCodec && codec != pformat.Uncompressed {
				return bad("column %s is compressed with %s, lablog writes %s", strings.Join(c.MetaData.PathInSchema, "."), c.MetaData.Codec, pageCodec)
			}
		}
	}
	kv := map[string]string{}
	for _, k := range keys {
		v, ok := pf.Lookup(k)
		if !ok {
			return bad("missing key %s", k)
		}
		kv[k] = v
	}
	m := Meta{Format: format}
	var errs []error
	m.Stream = kv[KeyStream]
	if !ValidStream(m.Stream) {
		errs = append(errs, fmt.Errorf("%s %q", KeyStream, m.Stream))
	}
	m.BufferID = kv[KeyBufferID]
	if m.BufferID != "" && !ValidBufferID(m.BufferID) {
		errs = append(errs, fmt.Errorf("%s %q", KeyBufferID, m.BufferID))
	}
	hour, err := time.Parse(time.RFC3339, kv[KeyHour])
	if err == nil && !hour.Equal(frame.Hour(hour)) {
		err = errors.New("not a whole hour")
	}
	m.Hour = hour.UTC()
	errs = append(errs, err)
	m.FirstSeq, err = strconv.ParseUint(kv[KeyFirstSeq], 10, 64)
	errs = append(errs, err)
	m.LastSeq, err = strconv.ParseUint(kv[KeyLastSeq], 10, 64)
	errs = append(errs, err)
	m.Frames, err = strconv.ParseInt(kv[KeyFrames], 10, 64)
	errs = append(errs, err)
	m.Rows, err = strconv.ParseInt(kv[KeyRows], 10, 64)
	errs = append(errs, err)
	if rev, ok := pf.Lookup(KeyRevision); ok {
		n, err := strconv.Atoi(rev)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s %q", KeyRevision, rev))
		}
		m.Revision = n
	}
	m.Checksum = kv[KeyChecksum]
	if len(m.Checksum) != len("sha256:")+64 || !strings.HasPrefix(m.Checksum, "sha256:") {
		errs = append(errs, fmt.Errorf("%s %q", KeyChecksum, m.Checksum))
	}
	if err := errors.Join(errs...); err != nil {
		return m, fmt.Errorf("%s: %w: %w", path, ErrMetadata, err)
	}
	if pf.NumRows() != m.Rows {
		return m, fmt.Errorf("%s: %w: footer counts %d rows, %s says %d", path, ErrMismatch, pf.NumRows(), KeyRows, m.Rows)
	}
	return m, nil
}
