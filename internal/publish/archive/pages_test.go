package archive_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/practable/lablog/internal/publish/archive"
)

// readers are every way lablog reads an archive file.
var readers = map[string]func(string) error{
	"Verify":   func(p string) error { _, err := archive.Verify(p); return err },
	"ReadMeta": func(p string) error { _, err := archive.ReadMeta(p); return err },
	"Scan":     func(p string) error { _, err := archive.Scan(p, func(*archive.Row) error { return nil }); return err },
	"ScanMessages": func(p string) error {
		_, err := archive.ScanMessages(p, func(*archive.MessageRow) error { return nil })
		return err
	},
}

// allocated runs read and returns the bytes it allocated.
func allocated(read func() error) (uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := read()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

// refusedCheaply: every reader that reads what was damaged refuses the file
// as corrupt, without allocating what the damage claims.
func refusedCheaply(t *testing.T, path string, names ...string) {
	t.Helper()
	for _, name := range names {
		n, err := allocated(func() error { return readers[name](path) })
		if !errors.Is(err, archive.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		if n > 64<<20 {
			t.Errorf("%s allocated %d MiB reading the damaged file", name, n>>20)
		}
	}
}

// TestHugePageSizeRefused: a page header that states 2 GiB uncompressed
// (what one flipped bit in its varint can do; parquet-go allocates it
// before it decompresses) is refused before any page is read, by the
// readers that read its column; the others still read the file.
func TestHugePageSizeRefused(t *testing.T) {
	path, _, _ := good(t, t.TempDir())
	for _, c := range []struct {
		column        string
		refused, read []string
	}{
		{"seq", []string{"Verify", "Scan", "ScanMessages"}, nil},
		{"raw", []string{"Verify", "Scan"}, []string{"ScanMessages", "ReadMeta"}},
	} {
		t.Run(c.column, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), filepath.Base(path))
			hugePage(t, path, out, c.column)
			refusedCheaply(t, out, c.refused...)
			for _, name := range c.read {
				if err := readers[name](out); err != nil {
					t.Errorf("%s does not read column %s, yet: %v", name, c.column, err)
				}
			}
		})
	}
}

// hugePage writes to out the file at path with the first page of column
// stating 2 GiB uncompressed.
func hugePage(t *testing.T, path, out, column string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pf.Schema().Lookup(column)
	md := pf.Metadata().RowGroups[0].Columns[leaf.ColumnIndex].MetaData
	start := md.DataPageOffset
	if md.DictionaryPageOffset != 0 {
		start = md.DictionaryPageOffset
	}
	damaged := withPageHeader(t, b, start, func(h *pformat.PageHeader) { h.UncompressedPageSize = math.MaxInt32 })
	if err := os.WriteFile(out, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
}

// withPageHeader returns file b with the page header at pos changed by
// edit and the file's length kept: the page's body gives up (or is padded
// with) the bytes the header grew (or shrank) by, so every offset after it
// still holds. The header loses its CRC, which parquet-go then does not
// check: only the header's sizes are wrong.
func withPageHeader(t *testing.T, b []byte, pos int64, edit func(*pformat.PageHeader)) []byte {
	t.Helper()
	r := bytes.NewReader(b[pos:])
	var h pformat.PageHeader
	if err := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(r)).Decode(&h); err != nil {
		t.Fatal(err)
	}
	oldLen := len(b[pos:]) - r.Len()
	body := b[pos+int64(oldLen) : pos+int64(oldLen)+int64(h.CompressedPageSize)]
	edit(&h)
	h.CRC = 0
	var enc []byte
	grow := 0
	for range 10 { // the body's size changes the header's only at varint steps
		if grow >= len(body) {
			t.Fatalf("the header grew by %d bytes, its page has %d", grow, len(body))
		}
		h.CompressedPageSize = int32(len(body) - grow)
		var err error
		if enc, err = thrift.Marshal(new(thrift.CompactProtocol), &h); err != nil {
			t.Fatal(err)
		}
		if len(enc)-oldLen == grow {
			break
		}
		grow = len(enc) - oldLen
	}
	out := append([]byte(nil), b[:pos]...)
	out = append(out, enc...)
	out = append(out, body[:min(len(body), len(body)-grow)]...)
	out = append(out, make([]byte, max(0, -grow))...)
	out = append(out, b[pos+int64(oldLen)+int64(len(body)):]...)
	if len(out) != len(b) {
		t.Fatalf("length %d, want %d", len(out), len(b))
	}
	return out
}

// TestHugeListInFooterRefused: the footer's list of schema elements
// turned into 2M of them (parquet-go's decoder makes the list before it
// reads one; a larger count would end the process) is refused by every
// reader, ReadMeta too.
func TestHugeListInFooterRefused(t *testing.T) {
	path, _, _ := good(t, t.TempDir())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	footer := len(b) - 8 - int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	// FileMetaData: field 1 (version, i32), then field 2 (schema, a list of
	// structs, its count in a varint after 0xfc as it is over 14).
	if b[footer] != 0x15 || b[footer+1] >= 0x80 || b[footer+2] != 0x19 || b[footer+3] != 0xfc {
		t.Fatalf("footer begins % x, not version then a long schema list", b[footer:footer+4])
	}
	copy(b[footer+4:], []byte{0xff, 0xff, 0x7f}) // 2^21-1 elements
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	refusedCheaply(t, out, "Verify", "ReadMeta", "Scan", "ScanMessages")
}

// TestHugeListInPageIndexRefused: the first offset index's list of page
// locations turned into 4M of them (parquet-go makes the list before it
// reads one) is refused by every reader, ReadMeta too.
func TestHugeListInPageIndexRefused(t *testing.T) {
	path, _, _ := good(t, t.TempDir())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	at := pf.Metadata().RowGroups[0].Columns[0].OffsetIndexOffset
	// OffsetIndex: field 1 (page_locations, a list of structs, one here).
	if at == 0 || b[at] != 0x19 || b[at+1] != 0x1c {
		t.Fatalf("offset index at %d begins % x, not a list of one page location", at, b[at:at+2])
	}
	copy(b[at+1:], []byte{0xfc, 0xff, 0xff, 0xff, 0x01}) // 2^22-1 page locations
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	refusedCheaply(t, out, "Verify", "ReadMeta", "Scan", "ScanMessages")
}
