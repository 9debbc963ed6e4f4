package buffer

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// quarantineInfix names a buffer file Open set aside: <path>.corrupt-<time>.
const quarantineInfix = ".corrupt-"

// quarantineName is the name Open sets a damaged buffer at path aside as:
// <path>.corrupt-<time>, with -2, -3, ... after it when a file of that name
// is there already (two quarantines in one second), which a rename would
// replace.
func quarantineName(path string, now time.Time) string {
	base := path + quarantineInfix + now.UTC().Format("20060102T150405Z")
	name := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, n)
	}
}

// QuarantinedFiles lists the files Open set aside from the buffer at path,
// oldest first.
func QuarantinedFiles(path string) ([]string, error) {
	files, err := filepath.Glob(path + quarantineInfix + "*")
	if err != nil {
		return nil, fmt.Errorf("buffer %s: quarantined files: %w", path, err)
	}
	slices.Sort(files) // the time in the name sorts
	return files, nil
}

// salvagedMarker is the note that the quarantined file was salvaged: in
// the damaged folder, so the quarantined file keeps the name the fault
// shows.
func salvagedMarker(quarantined string) string {
	return filepath.Join(damagedDir(quarantined), filepath.Base(quarantined)+".salvaged")
}

// Salvaged reports whether MarkSalvaged was called for the quarantined file.
func Salvaged(quarantined string) bool {
	_, err := os.Stat(salvagedMarker(quarantined))
	return err == nil
}

// MarkSalvaged notes, durably, that every record that could be read from
// the quarantined file is archived; note (what was salvaged and what was
// not) is the marker's text. It returns the marker's path.
func MarkSalvaged(quarantined string, note []byte) (string, error) {
	path := salvagedMarker(quarantined)
	if err := writeSynced(path, note); err != nil {
		return "", fmt.Errorf("salvage %s: mark: %w", quarantined, err)
	}
	return path, nil
}

// Stranded is what could be read of a quarantined (damaged) buffer file.
// bbolt would map the file and fault on its damaged pages, so it is read
// with the same careful page walk that guards Open (see validate.go): a
// damaged page, bucket or element is reported in Lost and the walk goes on
// with the rest. Blocks are read from the file when scanned, so memory
// stays small whatever the file's size.
type Stranded struct {
	f        *os.File
	path     string
	BufferID string // the buffer's id, or a stand-in when it could not be read
	StandIn  bool   // BufferID was derived from the file, not read from it
	// CountsRead says whether the buffer's running counts could be read:
	// only then is each Group's Records the number the buffer held.
	CountsRead bool
	Lost       []string // what could not be read: pages, buckets, keys
	groups     []strandedGroup
}

type strandedGroup struct {
	Group
	blocks []blockAt
}

// blockAt is where a block's value lies in the file.
type blockAt struct {
	key       []byte
	off, size int64
}

// ReadStranded reads the tree of the buffer file at path as far as it can.
// It fails only when the file cannot be read at all (missing, no
// permission); damage, even a file with no valid meta page, is listed in
// Lost.
func ReadStranded(path string) (*Stranded, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	s, err := readStranded(f, path)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("salvage %s: %w", path, err)
	}
	return s, nil
}

func readStranded(f *os.File, path string) (*Stranded, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	s := &Stranded{f: f, path: path}
	metas, err := validMetas(f)
	if err != nil {
		s.Lost = append(s.Lost, err.Error()) // nothing can be read
		return s, nil
	}
	m := metas[0]
	inFile := uint64(fi.Size() / int64(m.pageSize))
	if len(metas) > 1 && m.root >= inFile && metas[1].root < inFile {
		// The tree of the transaction before is whole until the next
		// commit reuses its pages: read it rather than nothing.
		s.Lost = append(s.Lost, fmt.Sprintf("the current tree (transaction %d) starts past the end of the file: read the one before it (transaction %d)", m.txid, metas[1].txid))
		m = metas[1]
	}
	pages := m.pgid
	if inFile < pages {
		s.Lost = append(s.Lost, fmt.Sprintf("file cut short: %d of the %d pages in use", inFile, pages))
		pages = inFile
	}
	type kv struct {
		key       []byte
		off, size int64
	}
	var meta, seqs, counts []kv
	var v1 int // format-1 records: Open converts them, salvage does not
	var blocks map[groupKey][]blockAt
	var lostIn map[string]bool // top-level buckets with a part lost; "" the root
	// A page reached twice may have been read the first time under the
	// wrong bucket: then the tree is walked again, reading it from neither.
	lostBefore := len(s.Lost)
	var shun map[uint64]bool
	for {
		s.Lost = s.Lost[:lostBefore]
		meta, seqs, counts, v1 = nil, nil, nil, 0
		blocks, lostIn = map[groupKey][]blockAt{}, map[string]bool{}
		w := treeWalk{f: f, pageSize: int64(m.pageSize), pages: pages, seen: map[uint64]bool{}, twice: map[uint64]bool{}, shun: shun}
		w.lost = func(buckets [][]byte, err error) {
			if len(buckets) == 0 {
				lostIn[""] = true
			} else {
				lostIn[string(buckets[0])] = true
			}
			s.Lost = append(s.Lost, fmt.Sprintf("bucket %s: %v", showBuckets(buckets), err))
		}
		w.visit = func(buckets [][]byte, key []byte, off, size int64) {
			e := kv{key, off, size}
			switch {
			case len(buckets) == 1 && bytes.Equal(buckets[0], metaBucket):
				meta = append(meta, e)
			case len(buckets) == 1 && bytes.Equal(buckets[0], seqsBucket):
				seqs = append(seqs, e)
			case len(buckets) == 1 && bytes.Equal(buckets[0], countsBucket):
				counts = append(counts, e)
			case len(buckets) > 0 && bytes.Equal(buckets[0], v1Bucket):
				v1++
			case len(buckets) == 2 && (bytes.Equal(buckets[0], blocksBucket) || bytes.Equal(buckets[0], legacyBucket)):
				if len(key) != keyLen {
					s.Lost = append(s.Lost, fmt.Sprintf("bucket %s: key %x is not a block's", showBuckets(buckets), key))
					return
				}
				hour, _ := splitKey(key)
				gk := groupKey{legacy: bytes.Equal(buckets[0], legacyBucket), stream: string(buckets[1]), hour: hour.Unix()}
				blocks[gk] = append(blocks[gk], blockAt{key, off, size})
			}
		}
		if w.free, err = freePages(f, m, pages); err != nil {
			s.Lost = append(s.Lost, fmt.Sprintf("freelist: %v (pages are read without it)", err))
		}
		if err := w.skip(nil, w.page(m.root, 0, nil, keyRange{})); err != nil {
			return nil, err
		}
		if len(w.twice) == 0 || shun != nil {
			break
		}
		shun = w.twice
	}
	read := func(e kv) ([]byte, error) {
		v := make([]byte, e.size)
		_, err := f.ReadAt(v, e.off)
		return v, err
	}
	for _, e := range meta {
		if v, err := read(e); err == nil && bytes.Equal(e.key, keyID) && len(v) == 8 {
			s.BufferID = hex.EncodeToString(v)
		}
	}
	if s.BufferID == "" {
		s.BufferID, s.StandIn = standInID(f), true
		s.Lost = append(s.Lost, fmt.Sprintf("buffer id unreadable: records named by stand-in id %s", s.BufferID))
	}
	// A stream bucket's name is not covered by any checksum: one the seqs
	// bucket does not know is a damaged name, and its records' stream
	// unknown.
	known := map[string]bool{}
	for _, e := range seqs {
		known[string(e.key)] = true
	}
	expected := map[groupKey]int64{}
	s.CountsRead = !lostIn[""] && !lostIn[string(countsBucket)]
	for _, e := range counts {
		v, err := read(e)
		gk, ok := parseGroupKey(e.key)
		if err != nil || !ok || len(v) != 16 {
			s.CountsRead = false
			continue
		}
		expected[gk] = int64(binary.BigEndian.Uint64(v))
	}
	if v1 > 0 {
		s.Lost = append(s.Lost, fmt.Sprintf("%d records of format 1 (bucket %q) not salvaged", v1, v1Bucket))
		s.CountsRead = false // the counts do not cover them
	}
	for gk, b := range blocks {
		if !lostIn[""] && !lostIn[string(seqsBucket)] && !known[gk.stream] {
			s.Lost = append(s.Lost, fmt.Sprintf("stream bucket %q is not a stream of this buffer (a damaged name): %d blocks not read", gk.stream, len(b)))
			delete(blocks, gk)
		}
	}
	for gk := range expected {
		if _, ok := blocks[gk]; !ok {
			blocks[gk] = nil // every record of the group is lost
		}
	}
	for gk, b := range blocks {
		slices.SortFunc(b, func(x, y blockAt) int { return bytes.Compare(x.key, y.key) })
		g := Group{BufferID: s.BufferID, Stream: gk.stream, Hour: time.Unix(gk.hour, 0).UTC(), Records: -1}
		if gk.legacy {
			g.BufferID = ""
		}
		if n, ok := expected[gk]; ok || s.CountsRead {
			g.Records = n
		}
		s.groups = append(s.groups, strandedGroup{g, b})
	}
	slices.SortFunc(s.groups, func(a, b strandedGroup) int {
		return cmpGroups(a.Group, b.Group)
	})
	return s, nil
}

func cmpGroups(a, b Group) int {
	if c := strings.Compare(a.BufferID, b.BufferID); c != 0 {
		return c
	}
	if c := a.Hour.Compare(b.Hour); c != 0 {
		return c
	}
	return strings.Compare(a.Stream, b.Stream)
}

// freePages is the set of pages m's freelist names, for a file of which
// pages [0, pages) are there.
func freePages(f *os.File, m boltMeta, pages uint64) (map[uint64]bool, error) {
	if m.freelist == noFreelist {
		return nil, nil
	}
	if m.freelist < 2 || m.freelist >= pages {
		return nil, fmt.Errorf("page %d outside the %d pages", m.freelist, pages)
	}
	if err := checkFreelist(f, boltMeta{pageSize: m.pageSize, freelist: m.freelist, pgid: pages}); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	ps := int64(m.pageSize)
	hdr := make([]byte, pageHeaderSize+8)
	if _, err := f.ReadAt(hdr, int64(m.freelist)*ps); err != nil {
		return nil, err
	}
	n, at := uint64(le.Uint16(hdr[10:])), int64(m.freelist)*ps+pageHeaderSize
	if n == 0xFFFF { // the real count is the first element
		n, at = le.Uint64(hdr[pageHeaderSize:]), at+8
	}
	ids := make([]byte, 8*n) // checkFreelist made sure they fit their pages
	if _, err := f.ReadAt(ids, at); err != nil {
		return nil, err
	}
	free := make(map[uint64]bool, n)
	for i := range n {
		free[le.Uint64(ids[8*i:])] = true
	}
	return free, nil
}

// standInID names the records of a buffer whose id cannot be read: a hash of
// its meta pages, which nothing writes again, so a second salvage of the
// same file names them alike.
func standInID(f *os.File) string {
	h := fnv.New64a()
	b := make([]byte, 2*pageHeaderSize+2*metaSumOffset)
	n, _ := f.ReadAt(b, 0)
	h.Write(b[:n])
	return fmt.Sprintf("%016x", h.Sum64())
}

func showBuckets(buckets [][]byte) string {
	if len(buckets) == 0 {
		return "(root)"
	}
	names := make([]string, len(buckets))
	for i, b := range buckets {
		names[i] = fmt.Sprintf("%q", b)
	}
	return strings.Join(names, "/")
}

// Path is the file read.
func (s *Stranded) Path() string { return s.path }

// Groups lists the groups found, in the blocks or in the counts. Records is
// what the counts say the buffer held, -1 when they could not be read.
func (s *Stranded) Groups() []Group {
	out := make([]Group, len(s.groups))
	for i, g := range s.groups {
		out[i] = g.Group
	}
	return out
}

// Scan calls fn for every record of g whose block's checksums hold, in seq
// order, and returns the blocks that do not.
func (s *Stranded) Scan(g Group, fn func(seq uint64, r frame.Record) error) ([]Damaged, error) {
	i := slices.IndexFunc(s.groups, func(sg strandedGroup) bool { return cmpGroups(sg.Group, g) == 0 })
	if i < 0 {
		return nil, fmt.Errorf("salvage %s: no group %s", s.path, g)
	}
	var damaged []Damaged
	next := uint64(0) // the lowest seq not yet passed: blocks never repeat one
	for _, b := range s.groups[i].blocks {
		v := make([]byte, b.size)
		if _, err := s.f.ReadAt(v, b.off); err != nil {
			return damaged, fmt.Errorf("salvage %s: %w", s.path, err)
		}
		recs, err := decodeBlock(g.Stream, b.key, v)
		if err != nil {
			damaged = append(damaged, Damaged{Key: b.key, Value: v, Records: blockCount(v), Err: err})
			continue
		}
		first := seqOf(b.key)
		for j, r := range recs {
			seq := first + uint64(j)
			if seq < next {
				continue
			}
			if err := fn(seq, r); err != nil {
				return damaged, err
			}
			next = seq + 1
		}
	}
	return damaged, nil
}

// Close closes the file.
func (s *Stranded) Close() error { return s.f.Close() }
