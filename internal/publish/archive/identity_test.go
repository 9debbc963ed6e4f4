package archive_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/duckdbtest"
)

// v1File is a format 1 file written by lablog before buffer ids existed
// (testdata/format1, made with that version's writer): stream spin-30,
// hour14, seqs 1-6.
var v1File = filepath.Join("stream=spin-30", "date=2026-11-26", "spin-30-20261126T14-00000000000000000001-00000000000000000006.parquet")

const (
	idA = "0123456789abcdef"
	idB = "fedcba9876543210"
)

// v1Tree copies the format 1 fixture into a fresh archive root.
func v1Tree(t *testing.T) string { return fixtureTree(t, "format1") }

// fixtureTree copies testdata/name into a fresh archive root.
func fixtureTree(t *testing.T, name string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return root
}

// v2File is the same records written by the format 2 writer (before the
// statement columns) into testdata/format2, with buffer id idA.
var v2File = filepath.Join("stream=spin-30", "date=2026-11-26", "spin-30-20261126T14-"+idA+"-00000000000000000001-00000000000000000006.parquet")

func TestFormat1FilesStillRead(t *testing.T) { testOldFormatReads(t, "format1", v1File, "1", "") }
func TestFormat2FilesStillRead(t *testing.T) { testOldFormatReads(t, "format2", v2File, "2", idA) }

func testOldFormatReads(t *testing.T, fixture, file, format, id string) {
	root := fixtureTree(t, fixture)
	path := filepath.Join(root, file)
	m, err := archive.Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != format || m.BufferID != id || m.Stream != "spin-30" || !m.Hour.Equal(hour14) || m.FirstSeq != 1 || m.LastSeq != 6 || m.Frames != 6 {
		t.Errorf("format %s meta = %+v", format, m)
	}
	if rm, err := archive.ReadMeta(path); err != nil || rm != m {
		t.Errorf("ReadMeta = %+v, %v; Verify said %+v", rm, err, m)
	}
	rows, _, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if (r.BufferID != nil) != (id != "") {
			t.Errorf("seq %d: buffer_id %v in a format %s file", r.Seq, r.BufferID, format)
		}
		if r.Query != nil || r.Verb != nil {
			t.Errorf("seq %d: statement columns in a format %s file", r.Seq, format)
		}
	}
	// The fixture's frames, byte for byte.
	got := frames(rows)
	for seq, want := range map[int64]string{2: full + nanMsg, 4: "{\"user\":\"\xff\"}", 5: "\x00\x01\xfe\xff", 6: "3"} {
		if string(got[seq]) != want {
			t.Errorf("seq %d: %q, want %q", seq, got[seq], want)
		}
	}
	if files, problems := archive.VerifyTree(root); files != 1 || len(problems) > 0 {
		t.Errorf("VerifyTree = %d, %v", files, problems)
	}
	// The checksum is the same function of the frames in both formats.
	sum := archive.NewChecksum()
	for _, e := range v1Entries() {
		sum.Add(e.Seq, e.Rec.Kind, e.Rec.Data)
	}
	if sum.String() != m.Checksum {
		t.Errorf("checksum of the fixture's frames %s, file says %s", sum, m.Checksum)
	}
}

// v1Entries are the records in the format 1 fixture.
func v1Entries() []archive.Entry {
	return []archive.Entry{
		entry(1, frame.Connected, "ws://localhost:8888/ws/spin-30"),
		entry(2, frame.Text, full+nanMsg),
		entry(3, frame.Text, legacy),
		entry(4, frame.Text, "{\"user\":\"\xff\"}"),
		entry(5, frame.Binary, "\x00\x01\xfe\xff"),
		entry(6, frame.Overflow, "3"),
	}
}

// TestLegacyRecordsKeepLegacyNames: records of a v1 buffer archived by this
// build get the name format 1 gave them, so an hour archived before the
// upgrade is found (ErrExists) rather than written twice.
func TestLegacyRecordsKeepLegacyNames(t *testing.T) {
	root := v1Tree(t)
	w, err := archive.Create(root, "spin-30", hour14, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range v1Entries() {
		e.Rec.Stream = "spin-30"
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Publish()
	if !errors.Is(err, archive.ErrExists) || path != filepath.Join(root, v1File) {
		t.Fatalf("Publish = %s, %v; want ErrExists for the format 1 file", path, err)
	}

	// A legacy file of this build: legacy name, null buffer_id, key present.
	path = write(t, root, "spin-30", hour14, archive.Options{}, entry(7, frame.Text, legacy))
	if base := filepath.Base(path); base != "spin-30-20261126T14-00000000000000000007-00000000000000000007.parquet" {
		t.Errorf("legacy name %s", base)
	}
	rows, m, err := archive.ReadRows(path)
	if err != nil || m.Format != archive.Format || m.BufferID != "" || len(rows) != 1 || rows[0].BufferID != nil {
		t.Errorf("legacy file: %+v, %+v, %v", m, rows, err)
	}
	if files, problems := archive.VerifyTree(root); files != 2 || len(problems) > 0 {
		t.Errorf("VerifyTree = %d, %v", files, problems)
	}
}

// TestDuplicatesAreKeyedByBuffer: a fresh buffer restarts its seqs at 1, so
// equal seqs under different buffer ids are different records; equal seqs
// under the same id (legacy included) are duplicates.
func TestDuplicatesAreKeyedByBuffer(t *testing.T) {
	root := v1Tree(t)
	// Same stream, hour and seqs as the format 1 file, from two new buffers.
	a := write(t, root, "spin-30", hour14, archive.Options{BufferID: idA}, entry(1, frame.Text, "a1"), entry(6, frame.Text, "a6"))
	b := write(t, root, "spin-30", hour14, archive.Options{BufferID: idB}, entry(1, frame.Text, "b1"), entry(2, frame.Text, "b2"))
	if filepath.Dir(a) != filepath.Dir(b) || a == b {
		t.Fatalf("files %s and %s", a, b)
	}
	if files, problems := archive.VerifyTree(root); files != 3 || len(problems) > 0 {
		t.Fatalf("VerifyTree = %d, %v; want 3 files, no problems", files, problems)
	}

	// Buffer A's seq 6 again, in the next hour: a duplicate.
	write(t, root, "spin-30", hour14.Add(time.Hour), archive.Options{BufferID: idA}, entry(6, frame.Text, "a6"), entry(9, frame.Text, "a9"))
	// Legacy seq 3 again, in a legacy file of format 2: a duplicate of the
	// format 1 file's row.
	write(t, root, "spin-30", hour14, archive.Options{}, entry(3, frame.Text, legacy))
	files, problems := archive.VerifyTree(root)
	if files != 5 || len(problems) != 2 {
		t.Fatalf("VerifyTree = %d, %v; want 5 files, 2 duplicates", files, problems)
	}
	var msgs []string
	for _, p := range problems {
		if !errors.Is(p.Err, archive.ErrDuplicate) {
			t.Errorf("unexpected problem %v", p)
		}
		msgs = append(msgs, p.Err.Error())
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, a) || !strings.Contains(all, filepath.Join(root, v1File)) {
		t.Errorf("duplicates do not name the earlier files:\n%s", all)
	}
	if strings.Contains(all, b) {
		t.Errorf("buffer B's file reported:\n%s", all)
	}
}

func TestVerifyChecksBufferID(t *testing.T) {
	cases := map[string]struct {
		damage func(rows []archive.Row, meta map[string]string)
		want   error
	}{
		"one row from another buffer": {func(rows []archive.Row, meta map[string]string) {
			rows[1].BufferID = s(idB)
		}, archive.ErrMismatch},
		"rows without the id": {func(rows []archive.Row, meta map[string]string) {
			for i := range rows {
				rows[i].BufferID = nil
			}
		}, archive.ErrMismatch},
		"empty string is not null": {func(rows []archive.Row, meta map[string]string) {
			for i := range rows {
				rows[i].BufferID = s("")
			}
			meta[archive.KeyBufferID] = ""
		}, archive.ErrMismatch},
		"metadata names another buffer": {func(rows []archive.Row, meta map[string]string) {
			meta[archive.KeyBufferID] = idB
		}, archive.ErrMismatch}, // the name no longer agrees either
		"malformed id": {func(rows []archive.Row, meta map[string]string) {
			meta[archive.KeyBufferID] = "0123"
		}, archive.ErrMetadata},
		"key missing": {func(rows []archive.Row, meta map[string]string) {
			delete(meta, archive.KeyBufferID)
		}, archive.ErrMetadata},
		"format 3 schema called format 1": {func(rows []archive.Row, meta map[string]string) {
			meta[archive.KeyFormat] = "1"
		}, archive.ErrMetadata},
		"format 3 schema called format 2": {func(rows []archive.Row, meta map[string]string) {
			meta[archive.KeyFormat] = "2"
		}, archive.ErrMetadata},
		"unknown format": {func(rows []archive.Row, meta map[string]string) {
			meta[archive.KeyFormat] = "4"
		}, archive.ErrMetadata},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			path := write(t, root, "spin30", hour14, archive.Options{BufferID: idA},
				entry(1, frame.Text, full+nanMsg), entry(2, frame.Binary, "\xff"))
			rows, meta := parts(t, path)
			c.damage(rows, meta)
			forge(t, path, rows, meta)
			if _, err := archive.Verify(path); !errors.Is(err, c.want) {
				t.Errorf("Verify: err = %v, want %v", err, c.want)
			}
		})
	}
}

// parts returns a file's rows and its metadata as a map.
func parts(t *testing.T, path string) ([]archive.Row, map[string]string) {
	t.Helper()
	rows, _, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	return rows, footer(t, path)
}

func TestWriterRejectsBadBufferID(t *testing.T) {
	root := t.TempDir()
	for _, id := range []string{"0123", "0123456789ABCDEF", "../../etc/passwd"} {
		if _, err := archive.Create(root, "spin30", hour14, archive.Options{BufferID: id}); err == nil {
			t.Errorf("Create accepted buffer id %q", id)
		}
	}
	if tmp := tempFiles(t, root); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestDuckDBReadsBothFormats: researchers read a tree holding format 1 and
// format 2 files in one query; buffer_id is null where there was none.
func TestDuckDBReadsBothFormats(t *testing.T) {
	root := v1Tree(t)
	write(t, root, "spin-30", hour14, archive.Options{BufferID: idA}, entry(1, frame.Text, "a1"), entry(2, frame.Binary, "a2"),
		entry(3, frame.Connected, "ws://h/spin-30"))
	write(t, root, "spin-30", hour14, archive.Options{}, entry(7, frame.Text, legacy))
	from := fmt.Sprintf("read_parquet('%s', hive_partitioning=true, union_by_name=true)",
		strings.ReplaceAll(filepath.Join(root, "**", "*.parquet"), "'", "''"))
	got := duckdbtest.Query(t, `SELECT stream, coalesce(buffer_id, 'null') AS id, count(*) AS n,
		min(seq) AS lo, max(seq) AS hi FROM `+from+` GROUP BY ALL ORDER BY id`)
	want := []string{"spin-30 0123456789abcdef 3 1 3", "spin-30 null 8 1 7"} // fixture: 6 frames, 7 rows
	if len(got) != len(want) {
		t.Fatalf("DuckDB: %v, want %v", got, want)
	}
	for i, r := range got {
		if g := fmt.Sprint(r["stream"], " ", r["id"], " ", r["n"], " ", r["lo"], " ", r["hi"]); g != want[i] {
			t.Errorf("row %d = %q, want %q", i, g, want[i])
		}
	}
	// Connection events keep their detail in a column of their own; format 1
	// kept it in error, next to parse errors.
	events := duckdbtest.Query(t, `SELECT coalesce(buffer_id, 'null') AS id, seq, kind, coalesce(detail, '-') AS d,
		coalesce(error, '-') AS e FROM `+from+` WHERE kind NOT IN ('message', 'binary') ORDER BY id, seq`)
	wantEvents := []string{"0123456789abcdef 3 connected ws://h/spin-30 -", "null 1 connected - ws://localhost:8888/ws/spin-30", "null 6 overflow - 3"}
	if len(events) != len(wantEvents) {
		t.Fatalf("events %v, want %v", events, wantEvents)
	}
	for i, r := range events {
		if g := fmt.Sprint(r["id"], " ", r["seq"], " ", r["kind"], " ", r["d"], " ", r["e"]); g != wantEvents[i] {
			t.Errorf("event %d = %q, want %q", i, g, wantEvents[i])
		}
	}
}

// footer returns a file's key-value metadata.
func footer(t *testing.T, path string) map[string]string {
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
	meta := map[string]string{}
	for _, kv := range pf.Metadata().KeyValueMetadata {
		meta[kv.Key] = kv.Value
	}
	return meta
}
