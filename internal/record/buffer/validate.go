package buffer

import (
	"bytes"
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
// recover() catches. validateFile reads what bbolt would trust (the two meta
// pages, the freelist page and the tree of pages) with ordinary reads and
// refuses a file that does not hold them, so such a file is quarantined
// instead of crashing every start. The layout is bbolt's v2 file format, which it
// writes in the machine's byte order (little-endian on amd64 and arm64).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16 // id(8) flags(2) count(2) overflow(4)
	metaSumOffset    = 56 // the meta fields the checksum covers
	freelistPageFlag = 0x10
	noFreelist       = ^uint64(0)
)

var errTorn = errors.New("torn or damaged file")

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
	if m.freelist != noFreelist {
		if m.freelist < 2 || m.freelist >= m.pgid {
			return fmt.Errorf("%w: freelist page %d outside the %d pages", errTorn, m.freelist, m.pgid)
		}
		if err := checkFreelist(f, m); err != nil {
			return err
		}
	}
	return checkTree(f, m)
}

// currentMeta is the meta page bbolt would use: the valid one of the two
// with the higher transaction id.
func currentMeta(f *os.File) (boltMeta, error) {
	ms, err := validMetas(f)
	if err != nil {
		return boltMeta{}, err
	}
	return ms[0], nil
}

// validMetas is the valid meta pages, the current one first.
func validMetas(f *os.File) ([]boltMeta, error) {
	m0, err0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize())
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	m1, err1 := readMeta(f, pageSize)
	switch {
	case err0 != nil && err1 != nil:
		return nil, fmt.Errorf("%w: no valid meta page (%v; %v)", errTorn, err0, err1)
	case err1 != nil:
		return []boltMeta{m0}, nil
	case err0 != nil:
		return []boltMeta{m1}, nil
	case m0.txid > m1.txid:
		return []boltMeta{m0, m1}, nil
	}
	return []boltMeta{m1, m0}, nil
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

// The tree pages of bbolt's v2 format: a branch element is pos(4) ksize(4)
// pgid(8), a leaf element flags(4) pos(4) ksize(4) vsize(4); pos counts from
// the element itself. A bucket's value starts with its root page id and
// sequence; a root of 0 means the bucket's page follows inline.
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	elementSize      = 16
	bucketLeafFlag   = 0x01
	bucketHeaderSize = 16
	maxTreeDepth     = 64
)

// checkTree walks every page of every bucket from the root with ordinary
// reads and refuses a tree in which an offset, a size or a page id points
// outside its page or the pages in use. bbolt follows each of them through
// its memory map, and its consistency check does so in a goroutine of its
// own, where the fault of a damaged page kills the process rather than
// raising a panic open can recover: every start would crash.
func checkTree(f *os.File, m boltMeta) error {
	w := treeWalk{f: f, pageSize: int64(m.pageSize), pages: m.pgid, seen: map[uint64]bool{}}
	return w.page(m.root, 0, nil, keyRange{})
}

// treeWalk reads a bbolt tree with ordinary reads. By default it stops at
// the first damage; salvage (see salvage.go) sets visit and lost to read
// every key it can and be told of each part it cannot.
type treeWalk struct {
	f        *os.File
	pageSize int64
	pages    uint64 // pages [0, pages) are in use
	seen     map[uint64]bool
	// visit, when set, gets every key that is not a bucket, with the names
	// of the buckets that hold it and where its value lies in the file.
	visit func(buckets [][]byte, key []byte, off, size int64)
	// lost, when set, is told of each part that cannot be read, and the
	// walk goes on with the next.
	lost func(buckets [][]byte, err error)
	// With visit set, a page the freelist names, or one whose first key is
	// outside the range its parent gives it, is refused: a damaged page id
	// that leads to a stale page, or to another stream's, whose blocks'
	// checksums hold but are not this bucket's records.
	free map[uint64]bool
	// twice, when set, collects the pages reached a second time; shun
	// names pages refused from wherever they are reached. A damaged page id
	// can lead one bucket into another's subtree, whose blocks' checksums
	// hold: the walk that reached it first cannot tell, so the salvage walk
	// runs again shunning both claims (readStranded).
	twice, shun map[uint64]bool
}

// keyRange is the keys a branch element's child may hold: [lo, hi), hi nil
// for the last child. Only the salvage walk checks it.
type keyRange struct{ lo, hi []byte }

// skip is what damage to one part does: it ends the walk, or with lost set
// it is reported and the walk goes on (nil).
func (w *treeWalk) skip(buckets [][]byte, err error) error {
	if err == nil || w.lost == nil {
		return err
	}
	w.lost(buckets, err)
	return nil
}

// page checks the page id of a bucket's root or a branch's child.
func (w *treeWalk) page(id uint64, depth int, buckets [][]byte, keys keyRange) error {
	if id < 2 || id >= w.pages {
		return fmt.Errorf("%w: page %d outside the %d pages", errTorn, id, w.pages)
	}
	if w.shun[id] {
		return fmt.Errorf("%w: page %d is reached from two places: read from neither", errTorn, id)
	}
	if w.seen[id] {
		if w.twice != nil {
			w.twice[id] = true
		}
		return fmt.Errorf("%w: page %d reached twice", errTorn, id)
	}
	if w.free[id] {
		return fmt.Errorf("%w: page %d is free: a damaged page id leads to it", errTorn, id)
	}
	if depth > maxTreeDepth {
		return fmt.Errorf("%w: page %d is %d pages deep", errTorn, id, depth)
	}
	w.seen[id] = true
	// One read for the header and, mostly, the whole element table.
	head := make([]byte, w.pageSize)
	if _, err := w.f.ReadAt(head, int64(id)*w.pageSize); err != nil {
		return fmt.Errorf("%w: page %d: %v", errTorn, id, err)
	}
	le := binary.LittleEndian
	if got := le.Uint64(head); got != id {
		return fmt.Errorf("%w: page %d says it is page %d", errTorn, id, got)
	}
	overflow := uint64(le.Uint32(head[12:]))
	if id+overflow >= w.pages {
		return fmt.Errorf("%w: page %d runs past the %d pages", errTorn, id, w.pages)
	}
	base, span := int64(id)*w.pageSize, int64(1+overflow)*w.pageSize
	if keys.lo != nil {
		if first, ok := firstKey(head); !ok || bytes.Compare(first, keys.lo) < 0 || keys.hi != nil && bytes.Compare(first, keys.hi) >= 0 {
			return fmt.Errorf("%w: page %d does not hold the keys its parent names: a damaged page id leads to it", errTorn, id)
		}
	}
	return w.node(io.NewSectionReader(w.f, base, span), base, head, span, depth, id, buckets)
}

// node checks the elements of one page (id), on its own or inline in a
// bucket's value: r holds its span bytes, which start at base in the file,
// head the first of them.
func (w *treeWalk) node(r io.ReaderAt, base int64, head []byte, span int64, depth int, id uint64, buckets [][]byte) error {
	where := func() string {
		if id == 0 {
			return "inline bucket"
		}
		return fmt.Sprintf("page %d", id)
	}
	le := binary.LittleEndian
	if len(head) < pageHeaderSize {
		return fmt.Errorf("%w: %s: no page header", errTorn, where())
	}
	flags, count := le.Uint16(head[8:]), int64(le.Uint16(head[10:]))
	if flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("%w: %s: not a branch or leaf page (flags %#x)", errTorn, where(), flags)
	}
	end := pageHeaderSize + count*elementSize
	if end > span {
		return fmt.Errorf("%w: %s: %d elements do not fit", errTorn, where(), count)
	}
	table := head[pageHeaderSize:min(end, int64(len(head)))]
	if int64(len(head)) < end {
		table = make([]byte, count*elementSize)
		if _, err := r.ReadAt(table, pageHeaderSize); err != nil {
			return fmt.Errorf("%w: %s: elements: %v", errTorn, where(), err)
		}
	}
	for i := range count {
		e := table[i*elementSize:]
		at := uint64(pageHeaderSize + i*elementSize)
		if flags == branchPageFlag {
			pos, ksize := uint64(le.Uint32(e)), uint64(le.Uint32(e[4:]))
			if at+pos+ksize > uint64(span) {
				if err := w.skip(buckets, fmt.Errorf("%w: %s: key %d outside the page", errTorn, where(), i)); err != nil {
					return err
				}
				continue // its child's keys are unknown: it cannot be trusted
			}
			var keys keyRange
			if w.visit != nil {
				var err error
				if keys, err = w.childKeys(r, table, i, count, span); err != nil {
					if err := w.skip(buckets, fmt.Errorf("%w: %s: key %d: %v", errTorn, where(), i, err)); err != nil {
						return err
					}
					continue
				}
			}
			if err := w.skip(buckets, w.page(le.Uint64(e[8:]), depth+1, buckets, keys)); err != nil {
				return err
			}
			continue
		}
		eflags, pos := le.Uint32(e), uint64(le.Uint32(e[4:]))
		ksize, vsize := uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		if at+pos+ksize+vsize > uint64(span) {
			if err := w.skip(buckets, fmt.Errorf("%w: %s: element %d outside the page", errTorn, where(), i)); err != nil {
				return err
			}
			continue
		}
		var key []byte
		if w.visit != nil {
			key = make([]byte, ksize)
			if _, err := r.ReadAt(key, int64(at+pos)); err != nil {
				return fmt.Errorf("%w: %s: key %d: %v", errTorn, where(), i, err)
			}
		}
		voff := int64(at + pos + ksize)
		if eflags&bucketLeafFlag == 0 {
			if w.visit != nil {
				w.visit(buckets, key, base+voff, int64(vsize))
			}
			continue
		}
		if vsize < bucketHeaderSize {
			if err := w.skip(buckets, fmt.Errorf("%w: %s: bucket %d without a header", errTorn, where(), i)); err != nil {
				return err
			}
			continue
		}
		value := make([]byte, vsize)
		if _, err := r.ReadAt(value, voff); err != nil {
			return fmt.Errorf("%w: %s: bucket %d: %v", errTorn, where(), i, err)
		}
		inner := append(buckets[:len(buckets):len(buckets)], key)
		var err error
		if root := le.Uint64(value); root != 0 {
			err = w.page(root, depth+1, inner, keyRange{})
		} else {
			inline := value[bucketHeaderSize:]
			err = w.node(bytes.NewReader(inline), base+voff+bucketHeaderSize, inline, int64(len(inline)), depth+1, 0, inner)
		}
		if err := w.skip(inner, err); err != nil {
			return err
		}
	}
	return nil
}

// childKeys is the range of keys the child of branch element i may hold:
// from its key to the next element's.
func (w *treeWalk) childKeys(r io.ReaderAt, table []byte, i, count, span int64) (keyRange, error) {
	key := func(i int64) ([]byte, error) {
		e := table[i*elementSize:]
		at := uint64(pageHeaderSize + i*elementSize)
		pos, ksize := uint64(binary.LittleEndian.Uint32(e)), uint64(binary.LittleEndian.Uint32(e[4:]))
		if at+pos+ksize > uint64(span) {
			return nil, fmt.Errorf("outside the page")
		}
		k := make([]byte, ksize)
		_, err := r.ReadAt(k, int64(at+pos))
		return k, err
	}
	var kr keyRange
	var err error
	if kr.lo, err = key(i); err != nil {
		return kr, err
	}
	if i+1 < count {
		if kr.hi, err = key(i + 1); err != nil {
			return kr, err
		}
	}
	return kr, nil
}

// firstKey is the first key of a branch or leaf page whose head (its first
// pageSize bytes) is read; ok is false when it does not lie in head.
func firstKey(head []byte) ([]byte, bool) {
	le := binary.LittleEndian
	if len(head) < pageHeaderSize+elementSize || le.Uint16(head[10:]) == 0 {
		return nil, false
	}
	e := head[pageHeaderSize:]
	var pos, ksize uint64
	switch le.Uint16(head[8:]) {
	case branchPageFlag:
		pos, ksize = uint64(le.Uint32(e)), uint64(le.Uint32(e[4:]))
	case leafPageFlag:
		pos, ksize = uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:]))
	default:
		return nil, false
	}
	at := pageHeaderSize + pos
	if at+ksize > uint64(len(head)) {
		return nil, false
	}
	return head[at : at+ksize], true
}
