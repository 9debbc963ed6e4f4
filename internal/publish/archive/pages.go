package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pformat "github.com/parquet-go/parquet-go/format"
)

// Before parquet-go reads a file's metadata or pages, lablog checks what
// parquet-go would trust: its decoder allocates what a length, a count or a
// page header states before it reads what they describe, so one flipped bit
// could ask for 2 GiB, which a Pi with 1 GiB cannot give, and a Go program
// cannot recover from running out of memory. The daemon seeds its analytics
// from the archive at start until the seeding finishes, so a damaged file
// would kill it at every start.

// maxPageSize bounds a page's uncompressed size as its header states it:
// lablog writes 256 KiB pages, and other writers' pages are a few MiB.
const maxPageSize = 64 << 20

// checkFooter checks the footer that parquet.OpenFile decodes: its length
// within the file, and every length and count in it within its bytes
// (compactStruct). pages is where the pages end (the footer begins).
func checkFooter(r io.ReaderAt, size int64) (pages int64, err error) {
	if size < 12 {
		return 0, fmt.Errorf("%d bytes, too short for Parquet", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return 0, err
	}
	if string(tail[4:]) != "PAR1" {
		return 0, errors.New("no PAR1 at its end")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 {
		return 0, fmt.Errorf("a footer of %d bytes in a file of %d", n, size)
	}
	pages = size - 8 - n
	footer := make([]byte, n)
	if _, err := r.ReadAt(footer, pages); err != nil {
		return 0, err
	}
	if _, err := compactStruct(footer); err != nil {
		return 0, fmt.Errorf("footer: %w", err)
	}
	return pages, nil
}

// checkPageIndex checks the page index the footer md points to, before
// parquet-go decodes it: each index within the file's pages (before pages),
// and every length and count in it within its bytes. The indexes sit
// together between the pages and the footer, so they are read at once.
func checkPageIndex(r io.ReaderAt, md *pformat.FileMetaData, pages int64) error {
	type index struct {
		what      string
		off, size int64
	}
	var indexes []index
	first, end := pages, int64(0)
	for _, rg := range md.RowGroups {
		for _, c := range rg.Columns {
			for _, ix := range []index{{"column index", c.ColumnIndexOffset, int64(c.ColumnIndexLength)}, {"offset index", c.OffsetIndexOffset, int64(c.OffsetIndexLength)}} {
				if ix.size == 0 {
					continue
				}
				if ix.off < 4 || ix.size < 0 || ix.off+ix.size > pages {
					return fmt.Errorf("%s of %d bytes at %d, outside the file's pages", ix.what, ix.size, ix.off)
				}
				indexes = append(indexes, ix)
				first, end = min(first, ix.off), max(end, ix.off+ix.size)
			}
		}
	}
	if len(indexes) == 0 {
		return nil
	}
	span := make([]byte, end-first)
	if _, err := r.ReadAt(span, first); err != nil {
		return err
	}
	for _, ix := range indexes {
		if _, err := compactStruct(span[ix.off-first : ix.off-first+ix.size]); err != nil {
			return fmt.Errorf("%s at %d: %w", ix.what, ix.off, err)
		}
	}
	return nil
}

// checkPages walks the page headers of the columns (indexes; nil: all) in
// every row group, as parquet-go will read them, and refuses what cannot
// be: a header whose lengths or counts overrun it, a page larger than
// maxPageSize or running past its chunk, more values than the row group
// has rows (lablog's columns are flat), a chunk outside the file or whose
// pages do not end where it does. It reads the headers only.
func checkPages(pf *parquet.File, columns []int) error {
	for g, rg := range pf.Metadata().RowGroups {
		for i, c := range rg.Columns {
			if columns != nil && !slices.Contains(columns, i) {
				continue
			}
			if err := checkChunk(pf, &c.MetaData, rg.NumRows, pf.Size()-8); err != nil {
				return fmt.Errorf("row group %d, column %s: %w", g, strings.Join(c.MetaData.PathInSchema, "."), err)
			}
		}
	}
	return nil
}

func checkChunk(r io.ReaderAt, md *pformat.ColumnMetaData, rows, limit int64) error {
	start := md.DataPageOffset // where parquet-go starts reading the chunk
	if md.DictionaryPageOffset != 0 {
		start = md.DictionaryPageOffset
	}
	end := start + md.TotalCompressedSize
	if start < 4 || md.TotalCompressedSize < 0 || end < start || end > limit {
		return fmt.Errorf("a chunk of %d bytes at %d, outside the file", md.TotalCompressedSize, start)
	}
	buf := make([]byte, 1024) // a header is tens of bytes: more with statistics
	for pos := start; pos < end; {
		h, n, err := readPageHeader(r, pos, end, &buf)
		if err != nil {
			return fmt.Errorf("page header at %d: %w", pos, err)
		}
		pos += n
		values, known := pageValues(&h)
		switch {
		case !known:
			return fmt.Errorf("page at %d: type %s without its header", pos, h.Type)
		case h.CompressedPageSize < 0 || int64(h.CompressedPageSize) > end-pos:
			return fmt.Errorf("page at %d: %d compressed bytes, %d left in the chunk", pos, h.CompressedPageSize, end-pos)
		case h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageSize:
			return fmt.Errorf("page at %d: %d bytes uncompressed, at most %d", pos, h.UncompressedPageSize, maxPageSize)
		case values < 0 || values > rows:
			return fmt.Errorf("page at %d: %d values in a row group of %d rows", pos, values, rows)
		}
		pos += int64(h.CompressedPageSize)
	}
	return nil
}

// readPageHeader decodes the page header at pos, reading more of the chunk
// while the header runs past what was read; n is its length.
func readPageHeader(r io.ReaderAt, pos, end int64, buf *[]byte) (h pformat.PageHeader, n int64, err error) {
	for size := int64(len(*buf)); ; size *= 4 {
		size = min(size, end-pos)
		if int64(cap(*buf)) < size {
			*buf = make([]byte, size)
		}
		b := (*buf)[:size]
		if _, err := r.ReadAt(b, pos); err != nil {
			return h, 0, err
		}
		length, err := compactStruct(b)
		if err != nil {
			if size < end-pos { // maybe only cut short: read more
				continue
			}
			return h, 0, err
		}
		err = thrift.Unmarshal(new(thrift.CompactProtocol), b[:length], &h)
		return h, int64(length), err
	}
}

// pageValues is the count of values a data or dictionary page's header
// states; known is false for a page of another type (parquet-go reads no
// other) or one without the header its type needs.
func pageValues(h *pformat.PageHeader) (values int64, known bool) {
	switch {
	case h.Type == pformat.DataPage && h.DataPageHeader.Valid:
		return int64(h.DataPageHeader.V.NumValues), true
	case h.Type == pformat.DataPageV2 && h.DataPageHeaderV2.Valid:
		return int64(h.DataPageHeaderV2.V.NumValues), true
	case h.Type == pformat.DictionaryPage && h.DictionaryPageHeader.Valid:
		return int64(h.DictionaryPageHeader.V.NumValues), true
	}
	return 0, false
}
