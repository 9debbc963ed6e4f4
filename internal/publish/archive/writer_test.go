package archive_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

const (
	full   = `{"user":"u1","t":1673351988406,"exp":"spinner","hardware":"spin30","course":"engdes1","type":"log","payload":{"log":"voltage","data":{"set":0}}}`
	nanMsg = `{"user": "u1", "t": 1673351988407, "type": "response", "payload": {"score": NaN, "x": [Infinity]}}`
	legacy = `{"user":"u2","t":1673351988408,"payload":{"log":"speed"}}`
)

// TestRoundTrip writes frames of every shape the relay and lablog produce and
// checks every column of every row read back, and that each frame's bytes
// come back exactly.
func TestRoundTrip(t *testing.T) {
	root := t.TempDir()
	checkTree(t, root)
	entries := []archive.Entry{
		entry(10, frame.Text, full+nanMsg), // glued by the relay
		entry(11, frame.Text, legacy),
		entry(12, frame.Text, "hello world"),
		entry(13, frame.Text, "{\"user\":\"\xff\"}"),
		entry(14, frame.Binary, "\x00\x01\xfe\xff"),
		entry(15, frame.Binary, "abc"),
		entry(16, frame.Text, ""),
		entry(17, frame.Connected, "ws://localhost:8888/ws/spin30"),
		entry(18, frame.Disconnected, "websocket: close 1006 (abnormal closure): unexpected EOF"),
		entry(19, frame.Oversize, "frame of 2000000 bytes exceeds 1048576"),
		entry(20, frame.Overflow, "17"),
		entry(21, frame.Text, " {\"a\":1} \n{\"user\":\"Zoë 😀\"}\n"),
		entry(22, frame.Binary, ""),
		entry(23, frame.Disconnected, "bad \xc3"),
	}
	const id = "00c0ffee0badf00d"
	path := write(t, root, "spin30", hour14.Add(30*time.Minute), archive.Options{BufferID: id}, entries...)
	if want := filepath.Join(root, "stream=spin30", "date=2026-11-26",
		"spin30-20261126T14-"+id+"-00000000000000000010-00000000000000000023.parquet"); path != want {
		t.Fatalf("path = %s, want %s", path, want)
	}
	rows, meta, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}

	at := func(seq int64) int64 {
		return hour14.Add(time.Duration(seq)*time.Second + 123456*time.Microsecond).UnixMicro()
	}
	row := func(seq int64, part int32, kind string) archive.Row {
		return archive.Row{ReceivedAt: at(seq), BufferID: s(id), Seq: seq, Part: part, Kind: kind, ClockSynced: seq%2 == 0}
	}
	var want []archive.Row
	r := row(10, 0, "message")
	r.User, r.Exp, r.Hardware, r.Course, r.Type, r.T = s("u1"), s("spinner"), s("spin30"), s("engdes1"), s("log"), i64(1673351988406)
	r.Payload, r.Raw = s(`{"log":"voltage","data":{"set":0}}`), s(full)
	want = append(want, r)
	r = row(10, 1, "message")
	r.User, r.Type, r.T = s("u1"), s("response"), i64(1673351988407)
	r.Payload, r.Raw = s(`{"score": NaN, "x": [Infinity]}`), s(nanMsg)
	want = append(want, r)
	r = row(11, 0, "message")
	r.User, r.T, r.Payload, r.Raw = s("u2"), i64(1673351988408), s(`{"log":"speed"}`), s(legacy)
	want = append(want, r)
	r = row(12, 0, "message")
	r.Raw, r.Error = s("hello world"), s("invalid JSON at byte 0: unexpected 'h'")
	want = append(want, r)
	r = row(13, 0, "message")
	r.RawBytes, r.Error = []byte("{\"user\":\"\xff\"}"), s("invalid UTF-8")
	want = append(want, r)
	r = row(14, 0, "binary")
	r.RawBytes = []byte("\x00\x01\xfe\xff")
	want = append(want, r)
	r = row(15, 0, "binary")
	r.RawBytes = []byte("abc")
	want = append(want, r)
	r = row(16, 0, "message")
	r.Raw, r.Error = s(""), s("empty frame")
	want = append(want, r)
	r = row(17, 0, "connected")
	r.Detail = s("ws://localhost:8888/ws/spin30")
	want = append(want, r)
	r = row(18, 0, "disconnected")
	r.Detail = s("websocket: close 1006 (abnormal closure): unexpected EOF")
	want = append(want, r)
	r = row(19, 0, "oversize")
	r.Detail = s("frame of 2000000 bytes exceeds 1048576")
	want = append(want, r)
	r = row(20, 0, "overflow")
	r.Detail = s("17")
	want = append(want, r)
	r = row(21, 0, "message")
	r.Raw, r.Error = s(" {\"a\":1} \n"), nil
	want = append(want, r)
	r = row(21, 1, "message")
	r.Raw, r.User = s("{\"user\":\"Zoë 😀\"}\n"), s("Zoë 😀")
	want = append(want, r)
	r = row(22, 0, "binary")
	r.RawBytes = []byte{}
	want = append(want, r)
	r = row(23, 0, "disconnected")
	r.Detail, r.RawBytes = s("bad \uFFFD"), []byte("bad \xc3")
	want = append(want, r)

	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(rows[i], want[i]) {
			t.Errorf("row %d:\n got %s\nwant %s", i, show(rows[i]), show(want[i]))
		}
	}
	got := frames(rows)
	for _, e := range entries {
		if !bytes.Equal(got[int64(e.Seq)], e.Rec.Data) {
			t.Errorf("seq %d: frame rebuilt as %q, want %q", e.Seq, got[int64(e.Seq)], e.Rec.Data)
		}
	}

	sum := archive.NewChecksum()
	for _, e := range entries {
		sum.Add(e.Seq, e.Rec.Kind, e.Rec.Data)
	}
	wantMeta := archive.Meta{Format: archive.Format, Stream: "spin30", Hour: hour14, BufferID: id, FirstSeq: 10, LastSeq: 23, Frames: 14, Rows: int64(len(want)), Checksum: sum.String()}
	if meta != wantMeta {
		t.Errorf("meta = %+v, want %+v", meta, wantMeta)
	}
	if m, err := archive.Verify(path); err != nil || m != wantMeta {
		t.Errorf("Verify = %+v, %v", m, err)
	}
	checkFileFormat(t, path)
}

// show prints a row with its pointers followed.
func show(r archive.Row) string {
	p := func(v *string) string {
		if v == nil {
			return "nil"
		}
		return fmt.Sprintf("%q", *v)
	}
	t := "nil"
	if r.T != nil {
		t = fmt.Sprint(*r.T)
	}
	return fmt.Sprintf("{at %d seq %d part %d kind %s synced %v user %s exp %s hw %s course %s type %s t %s payload %s raw %s raw_bytes %q (nil %v) error %s detail %s}",
		r.ReceivedAt, r.Seq, r.Part, r.Kind, r.ClockSynced, p(r.User), p(r.Exp), p(r.Hardware), p(r.Course), p(r.Type), t,
		p(r.Payload), p(r.Raw), r.RawBytes, r.RawBytes == nil, p(r.Error), p(r.Detail))
}

// checkFileFormat checks the promises of the layout in the file itself:
// zstd everywhere, dictionary-encoded string columns, typed timestamps, no
// stream or date column, and every lablog.* key.
func checkFileFormat(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{archive.KeyStream, archive.KeyHour, archive.KeyFirstSeq, archive.KeyLastSeq,
		archive.KeyFrames, archive.KeyRows, archive.KeyChecksum, archive.KeyFormat, archive.KeyBufferID} {
		if _, ok := pf.Lookup(k); !ok {
			t.Errorf("metadata key %s missing", k)
		}
	}
	if v, _ := pf.Lookup(archive.KeyHour); v != "2026-11-26T14:00:00Z" {
		t.Errorf("%s = %q", archive.KeyHour, v)
	}
	schema := pf.Schema()
	for _, col := range []string{"stream", "date"} {
		if _, ok := schema.Lookup(col); ok {
			t.Errorf("column %s would clash with the hive partition key", col)
		}
	}
	for name, want := range map[string]string{
		"received_at": "TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)",
		"t":           "TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS)",
		"user":        "STRING",
		"raw_bytes":   "BYTE_ARRAY",
		"buffer_id":   "STRING",
	} {
		leaf, ok := schema.Lookup(name)
		if !ok {
			t.Errorf("column %s missing", name)
			continue
		}
		if got := leaf.Node.Type().String(); got != want {
			t.Errorf("column %s type %s, want %s", name, got, want)
		}
	}
	dict := map[string]bool{"buffer_id": true, "kind": true, "user": true, "exp": true, "hardware": true, "course": true, "type": true}
	for _, rg := range pf.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			md := cc.MetaData
			if md.Codec.String() != "ZSTD" {
				t.Errorf("column %v codec %v, want ZSTD", md.PathInSchema, md.Codec)
			}
			if dict[md.PathInSchema[0]] && md.DictionaryPageOffset == 0 {
				t.Errorf("column %v has no dictionary page", md.PathInSchema)
			}
		}
	}
}

// TestRowGroupsBounded checks that the writer cuts row groups at the bound,
// even when a frame's messages straddle it.
func TestRowGroupsBounded(t *testing.T) {
	root := t.TempDir()
	checkTree(t, root)
	var entries []archive.Entry
	for seq := uint64(1); seq <= 250; seq++ {
		data := fmt.Sprintf(`{"user":"u%d","t":%d,"payload":{}}`, seq%7, 1700000000000+seq)
		if seq%10 == 0 {
			data += data + data // three messages in one frame
		}
		entries = append(entries, entry(seq, frame.Text, data))
	}
	path := write(t, root, "spin30", hour14, archive.Options{RowGroupRows: 64}, entries...)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	total := int64(250 + 25*2)
	var sizes []int64
	for _, rg := range pf.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	want := []int64{64, 64, 64, 64, total - 4*64}
	if !reflect.DeepEqual(sizes, want) {
		t.Errorf("row group sizes %v, want %v", sizes, want)
	}
	if pf.NumRows() != total {
		t.Errorf("rows = %d, want %d", pf.NumRows(), total)
	}
}

// TestRowGroupsBoundedInBytes checks that large messages end a row group
// at RowGroupBytes of text, long before the row bound, and that the file
// still reads back whole.
func TestRowGroupsBoundedInBytes(t *testing.T) {
	root := t.TempDir()
	checkTree(t, root)
	pad := strings.Repeat("x", 1<<20)
	var entries []archive.Entry
	for seq := uint64(1); seq <= 20; seq++ {
		entries = append(entries, entry(seq, frame.Text, fmt.Sprintf(`{"user":"u1","payload":{"s":"%s"}}`, pad)))
	}
	path := write(t, root, "spin30", hour14, archive.Options{RowGroupRows: 1000}, entries...)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	// Raw and payload each hold ~1 MiB a message: 2 MiB of text a row.
	perGroup := int64(archive.RowGroupBytes / (2 << 20))
	var sizes []int64
	for _, rg := range pf.RowGroups() {
		sizes = append(sizes, rg.NumRows())
		if rg.NumRows() > perGroup {
			t.Errorf("a row group of %d rows of 2 MiB of text; want at most %d", rg.NumRows(), perGroup)
		}
	}
	if len(sizes) < 2 {
		t.Errorf("row group sizes %v: the byte bound never ended one", sizes)
	}
	if _, err := archive.Verify(path); err != nil {
		t.Fatal(err)
	}
}

func TestPublishRefusesToOverwrite(t *testing.T) {
	root := t.TempDir()
	checkTree(t, root)
	e := []archive.Entry{entry(1, frame.Text, legacy), entry(2, frame.Text, full)}
	path := write(t, root, "spin30", hour14, archive.Options{}, e...)
	before, _ := os.ReadFile(path)

	w, err := archive.Create(root, "spin30", hour14, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []archive.Entry{entry(1, frame.Text, "other"), entry(2, frame.Text, "bytes")} {
		if err := w.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := w.Publish()
	if !errors.Is(err, archive.ErrExists) {
		t.Fatalf("republish: err = %v, want ErrExists", err)
	}
	if got != path {
		t.Errorf("ErrExists path = %s, want the existing %s", got, path)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("existing file was changed")
	}
}

func TestWriterRejectsMisuse(t *testing.T) {
	root := t.TempDir()
	checkTree(t, root)
	if _, err := archive.Create(filepath.Join(root, "absent"), "spin30", hour14, archive.Options{}); err == nil {
		t.Error("Create under a missing root must fail, not create it")
	}
	if _, err := os.Stat(filepath.Join(root, "absent")); err == nil {
		t.Error("Create made the missing root")
	}
	for _, bad := range []string{"", ".hidden", "a/b", "../x"} {
		if _, err := archive.Create(root, bad, hour14, archive.Options{}); err == nil {
			t.Errorf("Create accepted stream %q", bad)
		}
	}

	w, err := archive.Create(root, "spin30", hour14, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(entry(5, frame.Text, legacy)); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(entry(5, frame.Text, legacy)); err == nil {
		t.Error("Add accepted a repeated seq")
	}
	other := entry(6, frame.Text, legacy)
	other.Rec.Stream = "spin31"
	if err := w.Add(other); err == nil {
		t.Error("Add accepted another stream's record")
	}
	w.Abort()
	w.Abort() // twice is fine

	w, err = archive.Create(root, "spin30", hour14, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(); !errors.Is(err, archive.ErrEmpty) {
		t.Errorf("empty Publish: err = %v, want ErrEmpty", err)
	}
}

func TestFileNames(t *testing.T) {
	h := time.Date(2026, 11, 26, 14, 59, 59, 0, time.FixedZone("x", 3600)) // 13:59:59 UTC
	h13 := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)
	const id = "0123456789abcdef"
	const seqs = "-00000000000000000123-00000000000000000456.parquet"
	cases := []struct {
		name string
		want archive.Name
	}{
		{"spin30-20261126T13-" + id + seqs, archive.Name{Stream: "spin30", Hour: h13, BufferID: id, First: 123, Last: 456}},
		{"spin30-20261126T13" + seqs, archive.Name{Stream: "spin30", Hour: h13, First: 123, Last: 456}},
		{"spin-30-20261126T13" + seqs, archive.Name{Stream: "spin-30", Hour: h13, First: 123, Last: 456}},
		{"spin-30-20261126T13-" + id + seqs, archive.Name{Stream: "spin-30", Hour: h13, BufferID: id, First: 123, Last: 456}},
		// A stream named like a buffer id, with and without one.
		{"fedcba9876543210-20261126T13" + seqs, archive.Name{Stream: "fedcba9876543210", Hour: h13, First: 123, Last: 456}},
		{"fedcba9876543210-20261126T13-" + id + seqs, archive.Name{Stream: "fedcba9876543210", Hour: h13, BufferID: id, First: 123, Last: 456}},
		// A stream ending in what looks like an hour or a buffer id.
		{"a-20261126T12-20261126T13" + seqs, archive.Name{Stream: "a-20261126T12", Hour: h13, First: 123, Last: 456}},
		{"a-" + id + "-20261126T13" + seqs, archive.Name{Stream: "a-" + id, Hour: h13, First: 123, Last: 456}},
		{"a-" + id + "-20261126T13-" + id + seqs, archive.Name{Stream: "a-" + id, Hour: h13, BufferID: id, First: 123, Last: 456}},
		{"x.y_z-20261126T13-" + id + "-00000000000000000000-18446744073709551615.parquet",
			archive.Name{Stream: "x.y_z", Hour: h13, BufferID: id, First: 0, Last: 1<<64 - 1}},
	}
	for _, c := range cases {
		got, ok := archive.ParseFileName(c.name)
		if !ok || got != c.want {
			t.Errorf("ParseFileName(%s) = %+v, %v; want %+v", c.name, got, ok, c.want)
		}
		if back := archive.FileName(c.want); back != c.name {
			t.Errorf("FileName(%+v) = %s, want %s", c.want, back, c.name)
		}
	}
	if name := archive.FileName(archive.Name{Stream: "spin-30", Hour: h, BufferID: id, First: 123, Last: 456}); name != "spin-30-20261126T13-"+id+seqs {
		t.Errorf("FileName does not normalise the hour to UTC: %s", name)
	}
	if dir := archive.PartitionDir("/a", "spin30", h); dir != "/a/stream=spin30/date=2026-11-26" {
		t.Errorf("PartitionDir = %s", dir)
	}
	for _, bad := range []string{
		"spin30-20261126T13-123-456.parquet",
		"spin30-20261126T13-00000000000000000456-00000000000000000123.parquet",
		"20261126T13-00000000000000000123-00000000000000000456.parquet",
		"20261126T13-" + id + seqs, // no stream
		id + seqs,                  // no stream, no hour
		"spin30-" + id + seqs,      // no hour
		"spin30-20261126T13-00000000000000000123-00000000000000000456.parquet.tmp",
		"spin30-2026112613-00000000000000000123-00000000000000000456.parquet",
		"spin30-20261126T13-0123456789ABCDEF" + seqs,  // upper-case id
		"spin30-20261126T13-0123456789abcde" + seqs,   // 15 digits
		"spin30-20261126T13-0123456789abcdef0" + seqs, // 17 digits
		"spin30-20261126T13-0123456789abcdeg" + seqs,  // not hex
		".spin30-20261126T13-" + id + seqs,            // hidden
	} {
		if n, ok := archive.ParseFileName(bad); ok {
			t.Errorf("ParseFileName accepted %s as %+v", bad, n)
		}
	}
	// Fixed-width seqs sort in name order.
	a := archive.FileName(archive.Name{Stream: "s", Hour: h, BufferID: id, First: 9, Last: 9})
	b := archive.FileName(archive.Name{Stream: "s", Hour: h, BufferID: id, First: 10, Last: 10})
	if a >= b {
		t.Errorf("%s does not sort before %s", a, b)
	}
}

func TestValidBufferID(t *testing.T) {
	for id, want := range map[string]bool{
		"0123456789abcdef": true, "0000000000000000": true, "ffffffffffffffff": true,
		"": false, "0123456789ABCDEF": false, "0123456789abcde": false, "0123456789abcdef0": false, "0123456789abcdeg": false,
	} {
		if got := archive.ValidBufferID(id); got != want {
			t.Errorf("ValidBufferID(%q) = %v", id, got)
		}
	}
}
