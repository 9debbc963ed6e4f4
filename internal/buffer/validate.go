package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt maps the file and reads it through pointers: a file cut short by a
// power cut (a meta page naming pages past the end of the file, a freelist
// page longer than what is left) is a SIGBUS inside bbolt.Open, which no
// recover() catches. validateFile reads what bbolt would trust first (the
// two meta pages and the freelist page) with ordinary reads and refuses a
// file that does not hold them, so such a file is quarantined instead of
// crashing every start. The layout is bbolt's v2 file format, which it
// writes in the machine's byte order (little-endian on amd64 and arm64).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id(8) flags(2) count(2) overflow(4)
	metaSumOffset    = 56 // the meta fields the checksum covers
	freelistPageFlag = 0x10
	noFreelist       = ^uint64(0)
)

var errTorn = errors.New("torn or truncated file")

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use
	txid     uint64
}

// validateFile checks an existing, non-empty buffer file. An empty file is
// reported as errTorn too: bbolt would silently start a new database in it.
func validateFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return fmt.Errorf("%w: empty file", errTorn)
	}
	m, err := currentMeta(f)
	if err != nil {
		return err
	}
	ps := int64(m.pageSize)
	if m.pgid < 2 || m.pgid > uint64(size/ps) {
		return fmt.Errorf("%w: meta says %d pages of %d bytes, file has %d bytes", errTorn, m.pgid, ps, size)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Errorf("%w: root page %d outside the %d pages", errTorn, m.root, m.pgid)
	}
	if m.freelist == noFreelist {
		return nil
	}
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("%w: freelist page %d outside the %d pages", errTorn, m.freelist, m.pgid)
	}
	return checkFreelist(f, m)
}

// currentMeta is the meta page bbolt would use: the valid one of the two
// with the higher transaction id.
func currentMeta(f *os.File) (boltMeta, error) {
	m0, err0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize())
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	m1, err1 := readMeta(f, pageSize)
	switch {
	case err0 != nil && err1 != nil:
		return boltMeta{}, fmt.Errorf("%w: no valid meta page (%v; %v)", errTorn, err0, err1)
	case err1 != nil || (err0 == nil && m0.txid > m1.txid):
		return m0, nil
	}
	return m1, nil
}

// InUse is how many bytes at the start of a closed buffer file its pages in
// use take, by its current meta page; the rest is room bbolt grew ahead.
// Fault tests aim at it to damage live data rather than spare room.
func InUse(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("buffer %s: %w", path, err)
	}
	defer f.Close()
	m, err := currentMeta(f)
	if err != nil {
		return 0, fmt.Errorf("buffer %s: %w", path, err)
	}
	return int64(m.pgid) * int64(m.pageSize), nil
}

func readMeta(f *os.File, off int64) (boltMeta, error) {
	buf := make([]byte, pageHeaderSize+metaSumOffset+8)
	if _, err := f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return boltMeta{}, fmt.Errorf("meta page at %d: beyond the end", off)
		}
		return boltMeta{}, fmt.Errorf("meta page at %d: %w", off, err)
	}
	le := binary.LittleEndian
	b := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(b[:metaSumOffset])
	switch {
	case le.Uint32(b[0:]) != boltMagic:
		return boltMeta{}, fmt.Errorf("meta page at %d: not a bbolt file", off)
	case le.Uint32(b[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("meta page at %d: bbolt version %d", off, le.Uint32(b[4:]))
	case le.Uint64(b[metaSumOffset:]) != h.Sum64():
		return boltMeta{}, fmt.Errorf("meta page at %d: checksum", off)
	}
	m := boltMeta{
		pageSize: le.Uint32(b[8:]),
		root:     le.Uint64(b[16:]),
		freelist: le.Uint64(b[32:]),
		pgid:     le.Uint64(b[40:]),
		txid:     le.Uint64(b[48:]),
	}
	if m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("meta page at %d: page size %d", off, m.pageSize)
	}
	return m, nil
}

// checkFreelist makes sure the freelist page, with its overflow pages and
// its count of ids, lies inside the pages in use.
func checkFreelist(f *os.File, m boltMeta) error {
	ps := int64(m.pageSize)
	hdr := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(hdr, int64(m.freelist)*ps); err != nil {
		return fmt.Errorf("%w: freelist page: %v", errTorn, err)
	}
	le := binary.LittleEndian
	flags, count, overflow := le.Uint16(hdr[8:]), uint64(le.Uint16(hdr[10:])), uint64(le.Uint32(hdr[12:]))
	if flags != freelistPageFlag {
		return fmt.Errorf("%w: page %d is not the freelist (flags %#x)", errTorn, m.freelist, flags)
	}
	if m.freelist+overflow >= m.pgid {
		return fmt.Errorf("%w: freelist runs past the %d pages", errTorn, m.pgid)
	}
	ids := count
	if count == 0xFFFF { // the real count is the first element
		ids = le.Uint64(hdr[pageHeaderSize:]) + 1
	}
	if pageHeaderSize+8*ids > (1+overflow)*uint64(ps) {
		return fmt.Errorf("%w: freelist of %d ids does not fit its %d pages", errTorn, ids, 1+overflow)
	}
	return nil
}
