package archive

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	pformat "github.com/parquet-go/parquet-go/format"
)

// sampleMetadata is a footer with every kind of value compactStruct walks:
// nested structs, lists of structs, of strings and of i32, binary, i64,
// booleans in and out of lists, doubles.
func sampleMetadata(t testing.TB) []byte {
	t.Helper()
	name := "lablog"
	min, max := []byte("a"), []byte("zz")
	nan := 1.5
	md := pformat.FileMetaData{
		Version: 2,
		Schema:  []pformat.SchemaElement{{Name: "Row", NumChildren: thrift.New[int32](1)}, {Name: "seq"}},
		NumRows: 3,
		RowGroups: []pformat.RowGroup{{
			NumRows: 3, TotalByteSize: 100, SortingColumns: []pformat.SortingColumn{{ColumnIdx: 0, Descending: true, NullsFirst: false}},
			Columns: []pformat.ColumnChunk{{MetaData: pformat.ColumnMetaData{
				Type: pformat.Int64, Encoding: []pformat.Encoding{pformat.Plain, pformat.RLE}, PathInSchema: []string{"seq"},
				Codec: pformat.Zstd, NumValues: 3, DataPageOffset: 4, TotalCompressedSize: 40,
				Statistics:           pformat.Statistics{MinValue: min, MaxValue: max, NullCount: 0},
				SizeStatistics:       pformat.SizeStatistics{DefinitionLevelHistogram: []int64{0, 3}},
				GeospatialStatistics: pformat.GeospatialStatistics{BBox: pformat.BoundingBox{XMin: nan}},
			}}},
		}},
		KeyValueMetadata: []pformat.KeyValue{{Key: "lablog.stream", Value: "spin30"}},
		CreatedBy:        name,
	}
	b, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCompactStructWalksWhatThriftWrites(t *testing.T) {
	b := sampleMetadata(t)
	n, err := compactStruct(append(b, 0xff, 0xff)) // what follows is not its business
	if err != nil || n != len(b) {
		t.Fatalf("compactStruct = %d, %v; want %d", n, err, len(b))
	}
	for i := range b {
		if _, err := compactStruct(b[:i]); !errors.Is(err, errCompact) {
			t.Fatalf("cut to %d of %d bytes: %v, want errCompact", i, len(b), err)
		}
	}
}

func TestCompactStructRefusesImpossibleSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"binary longer than what is left", []byte{0x18, 0x85, 0x80, 0x04, 'a', 0}},               // field 1 binary, 65541 bytes
		{"list longer than what is left", []byte{0x19, 0xf5, 0xff, 0xff, 0x7f, 0x02, 0}},          // field 1 list<i32>, 2M items
		{"map larger than what is left", []byte{0x1b, 0xff, 0xff, 0x7f, 0x55, 0x02, 0x02, 0}},     // field 1 map<i32,i32>, 2M entries
		{"nested without end", bytes.Repeat([]byte{0x1c}, 10_000)},                                // struct in struct in ...
		{"unknown type", []byte{0x1e, 0}},                                                         // type 14
		{"varint without end", append([]byte{0x16}, bytes.Repeat([]byte{0x80}, 20)...)},           // field 1 i64
		{"list in list without end", append([]byte{0x19}, bytes.Repeat([]byte{0x19}, 10_000)...)}, // list<list<...>>
	} {
		if _, err := compactStruct(c.b); !errors.Is(err, errCompact) {
			t.Errorf("%s: %v, want errCompact", c.name, err)
		}
	}
}

// FuzzCompactStruct: on any bytes compactStruct ends without panicking
// and within them, and parquet-go's decoder does not panic on what it
// accepts.
func FuzzCompactStruct(f *testing.F) {
	f.Add(sampleMetadata(f))
	f.Add([]byte{0x19, 0x15, 0x02, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := compactStruct(b)
		if err != nil {
			return
		}
		if n < 1 || n > len(b) {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		var md pformat.FileMetaData
		_ = thrift.Unmarshal(new(thrift.CompactProtocol), b[:n], &md)
	})
}
