package buffer

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/record/frame"
)

func TestEveryNewBufferGetsItsOwnID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	open := func() *DB {
		t.Helper()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	first := db.ID()
	if len(first) != 16 {
		t.Fatalf("id %q, want 16 hex digits", first)
	}
	_ = db.Append([]frame.Record{rec("s", t0, "x")})
	_ = db.Close()
	if db = open(); db.ID() != first {
		t.Fatalf("reopened with id %s, want %s", db.ID(), first)
	}
	_ = db.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if db = open(); db.ID() == first {
		t.Fatal("a new buffer file reused the old id")
	}
	second := db.ID()
	_ = db.Close()
	// A zero-length file (torn at creation, or emptied) is set aside too.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	db = open()
	defer db.Close()
	if db.ID() == first || db.ID() == second || db.Quarantined() == "" {
		t.Fatalf("after emptying: id %s (quarantined %q), want a new id and a quarantine", db.ID(), db.Quarantined())
	}
}

// TestTornFileIsQuarantined cuts a buffer short, as a power cut can: bbolt
// itself dies of SIGBUS on such files, which would take the test down.
func TestTornFileIsQuarantined(t *testing.T) {
	src, _, _ := filledFile(t, 30000)
	hw := highWater(t, src)
	for _, size := range []int64{0, 100, 4096, 4096 + 100, 64 << 10, 256 << 10, hw / 2, hw - 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			copyFile(t, src, path)
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("open of a torn buffer: %v, want a fresh one", err)
			}
			defer db.Close()
			if db.Quarantined() == "" {
				t.Fatalf("torn at %d of %d bytes, not quarantined", size, hw)
			}
			if err := db.Append([]frame.Record{rec("s", t0, "x")}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFlippedBytesAreNeverArchivedAsGenuine writes random bytes over the
// used part of a buffer, again and again: every record that comes out must
// be exactly one that went in, and damage must be reported, never absorbed.
func TestFlippedBytesAreNeverArchivedAsGenuine(t *testing.T) {
	src, want, id := filledFile(t, 20000)
	hw := highWater(t, src)
	var quarantined, reported, unharmed int
	for i := range 40 {
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		path := filepath.Join(t.TempDir(), "buffer.db")
		copyFile(t, src, path)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, 64)
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		// Past the two meta pages, which bbolt checksums itself.
		if _, err := f.WriteAt(junk, 8192+rng.Int64N(hw-8192-64)); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		if db.Quarantined() != "" {
			quarantined++
			_ = db.Close()
			continue
		}
		if db.ID() != id {
			t.Fatalf("#%d: id changed to %s without a quarantine", i, db.ID())
		}
		groups, err := db.Groups()
		if err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
		damaged := 0
		for _, g := range groups {
			dm, err := db.Scan(g, 0, ^uint64(0), func(seq uint64, r frame.Record) error {
				orig := want[g.Stream]
				if g.BufferID != id || seq < 1 || seq > uint64(len(orig)) || !reflect.DeepEqual(r, orig[seq-1]) {
					return fmt.Errorf("seq %d of %v came out as %q, which never went in", seq, g, r.Data)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("#%d: %v", i, err)
			}
			damaged += len(dm)
		}
		if damaged > 0 {
			reported++
		} else {
			unharmed++ // the bytes landed on free space or padding
		}
		_ = db.Close()
	}
	t.Logf("40 runs of 64 random bytes: %d quarantined at open, %d reported as damaged blocks, %d landed where nothing lives",
		quarantined, reported, unharmed)
	if quarantined+reported == 0 {
		t.Fatal("no damage was ever noticed: the test is not reaching the data")
	}
}

func TestFormat1BufferIsConverted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	gunzip(t, "../../publish/compactor/testdata/v1/buffer.db.gz", path)
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Quarantined() != "" {
		t.Fatalf("a format-1 buffer was quarantined as %s", db.Quarantined())
	}
	// genv1.go.txt: 3 streams x 300 records + 1 event, spin31's first hour
	// (121 records) already archived and deleted.
	if got, want := db.Migrated(), int64(3*300+1-121); got != want {
		t.Fatalf("migrated %d records, want %d", got, want)
	}
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, g := range groups {
		if g.BufferID != "" {
			t.Fatalf("group %v: migrated records must keep the legacy identity", g)
		}
		n, err := records(db, g)
		if err != nil || n != g.Records {
			t.Fatalf("%v: %d records decode, counts say %d (%v)", g, n, g.Records, err)
		}
		total += n
	}
	if total != db.Migrated() {
		t.Fatalf("groups hold %d, migrated %d", total, db.Migrated())
	}
	// spin31's seqs go on after the format-1 ones, under the new identity.
	if err := db.Append([]frame.Record{rec("spin31", t0, "new")}); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, db, "spin31", t0)
	if len(got) != 1 || got[0].seq != 302 {
		t.Fatalf("new record %+v, want seq 302 (format 1 gave out 301)", got)
	}
}

// filledFile is a closed buffer file of its own holding n records (fill):
// its path, the records by stream and the buffer's id.
func filledFile(t *testing.T, n int) (string, map[string][]frame.Record, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "full.db")
	db, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := fill(t, db, n)
	id := db.ID()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, want, id
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func gunzip(t *testing.T, from, to string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
}

// TestScanNeverSkipsWhileBlocksMerge merges a group's small blocks between
// two of Scan's transactions: the scan must go on from the merged block, not
// skip past it (the compactor would then settle records missing from the
// file it wrote).
func TestScanNeverSkipsWhileBlocksMerge(t *testing.T) {
	db := openTest(t)
	g := group(db, "s", t0)
	appendOne := func(i int) {
		if err := db.Append([]frame.Record{rec("s", t0, fmt.Sprintf(`{"i":%d,"pad":"%0200d"}`, i, i))}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for ; n < 100; n++ { // 100 small blocks, under the merge threshold
		appendOne(n)
	}
	defaultScanBytes := scanBytes
	scanBytes = 1024
	merged := false
	betweenScans = func() {
		if merged {
			return
		}
		merged = true
		for ; n < 400; n++ { // past mergeAtBytes: the tail becomes one block
			appendOne(n)
		}
	}
	t.Cleanup(func() { scanBytes, betweenScans = defaultScanBytes, nil })
	next := uint64(1)
	dm, err := db.Scan(g, 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		if seq != next {
			return fmt.Errorf("seq %d after %d", seq, next-1)
		}
		next++
		return nil
	})
	if err != nil || len(dm) > 0 {
		t.Fatalf("%v, damaged %v", err, dm)
	}
	if !merged || next-1 != 400 {
		t.Fatalf("merged %v; scan saw %d of 400", merged, next-1)
	}
	var blocks int
	_ = db.bolt.View(func(tx *bolt.Tx) error { blocks = tx.Bucket(blocksBucket).Bucket([]byte("s")).Stats().KeyN; return nil })
	if blocks > 200 {
		t.Fatalf("%d blocks for 400 records: the small blocks were not merged", blocks)
	}
}

// TestScanGoesOnPastAGap: a scan resuming at a seq that lies in a gap (a
// settled range) goes back to the block before it, which ends short; with
// transactions that hold a single block it must still move on.
func TestScanGoesOnPastAGap(t *testing.T) {
	db := openTest(t)
	for c := range 3 { // three blocks of 10
		var batch []frame.Record
		for i := range 10 {
			batch = append(batch, rec("s", t0, fmt.Sprintf(`{"n":%d,"pad":"%0100d"}`, c*10+i+1, 0)))
		}
		if err := db.Append(batch); err != nil {
			t.Fatal(err)
		}
	}
	g := group(db, "s", t0)
	if n, err := db.Settle(g, 11, 20); err != nil || n != 10 {
		t.Fatalf("settled %d, %v", n, err)
	}
	txs := 0
	defaultScanBytes := scanBytes
	scanBytes = 1
	betweenScans = func() {
		if txs++; txs > 100 {
			panic("Scan makes no progress")
		}
	}
	t.Cleanup(func() { scanBytes, betweenScans = defaultScanBytes, nil })
	var seqs []uint64
	if _, err := db.Scan(g, 15, ^uint64(0), func(seq uint64, _ frame.Record) error {
		seqs = append(seqs, seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 10 || seqs[0] != 21 || seqs[9] != 30 {
		t.Fatalf("scan from 15 saw %v, want 21-30", seqs)
	}
}

// TestDamagedPagePointersAreQuarantined writes impossible offsets, sizes and
// page ids into the tree pages of a buffer, where a flipped byte on the card
// can put them. bbolt follows them through its memory map, and its
// consistency check does that in a goroutine of its own, where a fault
// kills the process: every start would crash. Each must be quarantined.
func TestDamagedPagePointersAreQuarantined(t *testing.T) {
	src, _, _ := filledFile(t, 30000)
	branches, leaves := treePages(t, src)
	if len(branches) == 0 || len(leaves) == 0 {
		t.Fatalf("%d branch and %d leaf pages: the buffer is too small to test", len(branches), len(leaves))
	}
	const huge = 0x7fff0000
	type damage struct {
		name  string
		pages []int64 // byte offsets of pages
		field int64   // byte offset in the page
		value uint64
		width int
	}
	damages := []damage{
		{"branch key offset", branches, 16, huge, 4},
		{"branch key size", branches, 20, huge, 4},
		{"branch child page", branches, 24, 1 << 40, 8},
		{"branch element count", branches, 10, 0xffff, 2},
		{"branch overflow", branches, 12, huge, 4},
		{"leaf key offset", leaves, 20, huge, 4},
		{"leaf key size", leaves, 24, huge, 4},
		{"leaf value size", leaves, 28, huge, 4},
		{"leaf element count", leaves, 10, 0xffff, 2},
	}
	for _, d := range damages {
		for _, page := range d.pages[:min(len(d.pages), 3)] {
			t.Run(fmt.Sprintf("%s at %d", d.name, page), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "buffer.db")
				copyFile(t, src, path)
				b := make([]byte, 8)
				binary.LittleEndian.PutUint64(b, d.value)
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(b[:d.width], page+d.field); err != nil {
					t.Fatal(err)
				}
				_ = f.Close()
				db, err := Open(path, Options{})
				if err != nil {
					t.Fatalf("open: %v, want a fresh buffer", err)
				}
				defer db.Close()
				if db.Quarantined() == "" {
					t.Fatal("not quarantined")
				}
			})
		}
	}
}

// flipPages are the tree pages whose bytes the flip tests damage one at a
// time: the first three branch and three leaf pages. Under an emulator
// (LABLOG_TEST_EXEC: the arm64 run) the first of each kind, a third of the
// flips (each costs a whole read of the file): every byte of a branch's
// and a leaf's header and first elements is still flipped there, and all
// six pages natively.
func flipPages(t *testing.T, path string) []int64 {
	t.Helper()
	perKind := 3
	if os.Getenv("LABLOG_TEST_EXEC") != "" {
		perKind = 1
	}
	branches, leaves := treePages(t, path)
	return append(branches[:min(len(branches), perKind)], leaves[:min(len(leaves), perKind)]...)
}

// treePages lists the byte offsets of the branch and leaf pages in use,
// as bbolt itself reports them.
func treePages(t *testing.T, path string) (branches, leaves []int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error { // tx.Page wants a writable transaction
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			off := int64(id) * int64(db.Info().PageSize)
			switch info.Type {
			case "branch":
				branches = append(branches, off)
			case "leaf":
				leaves = append(leaves, off)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return branches, leaves
}

// TestTreeCheckAcceptsEveryShape builds a bbolt file with every shape of
// tree bbolt writes (empty and inline buckets, nested ten deep, values
// over many pages, thousands of keys under branch pages) and lets the tree
// walk of open judge it: a healthy buffer must never be quarantined.
func TestTreeCheckAcceptsEveryShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shapes.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucket([]byte("empty")); err != nil {
			return err
		}
		inline, err := tx.CreateBucket([]byte("inline"))
		if err != nil {
			return err
		}
		if err := inline.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		if _, err := inline.CreateBucket([]byte("empty inside inline")); err != nil {
			return err
		}
		deep := inline
		for i := range 10 {
			if deep, err = deep.CreateBucket(fmt.Appendf(nil, "level %d", i)); err != nil {
				return err
			}
			if err := deep.Put([]byte("k"), make([]byte, 1+i*1000)); err != nil {
				return err
			}
		}
		big, err := tx.CreateBucket([]byte("big"))
		if err != nil {
			return err
		}
		for i := range 20000 {
			if err := big.Put(fmt.Appendf(nil, "key %08d", i), fmt.Appendf(nil, "value %d", i)); err != nil {
				return err
			}
		}
		for i := range 5 {
			if err := big.Put(fmt.Appendf(nil, "large %d", i), make([]byte, 100_000*(i+1))); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error {
			for cerr := range tx.Check() {
				return cerr
			}
			return nil
		})
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := validateFile(path); err != nil {
		t.Fatalf("a healthy file was refused: %v", err)
	}
}

// TestEveryTreeByteFlipped flips, one at a time, every byte of the page
// header and first elements of tree pages of a buffer: no flip may crash
// the process, and what opens without a quarantine must scan to the end
// with only records that went in.
func TestEveryTreeByteFlipped(t *testing.T) {
	src, want, id := filledFile(t, 30000)
	pages := flipPages(t, src)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "buffer.db")
	var quarantined, opened int
	for _, page := range pages {
		for off := page; off < page+16+4*16; off++ {
			damaged := slices.Clone(orig)
			damaged[off] ^= 0xff
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("byte %d flipped: %v", off, err)
			}
			if db.Quarantined() != "" {
				quarantined++
				_ = db.Close()
				_ = os.Remove(db.Quarantined())
				_ = os.Remove(path)
				continue
			}
			opened++
			groups, err := db.Groups()
			if err != nil {
				t.Fatalf("byte %d flipped: groups: %v", off, err)
			}
			for _, g := range groups {
				_, err := db.Scan(g, 0, ^uint64(0), func(seq uint64, r frame.Record) error {
					if g.BufferID != id || seq < 1 || seq > uint64(len(want[g.Stream])) || !reflect.DeepEqual(r, want[g.Stream][seq-1]) {
						return fmt.Errorf("seq %d of %v came out as %q, which never went in", seq, g, r.Data)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("byte %d flipped: %v", off, err)
				}
			}
			_ = db.Close()
		}
	}
	t.Logf("%d single-byte flips in %d tree pages: %d quarantined, %d opened with only genuine records", quarantined+opened, len(pages), quarantined, opened)
	if quarantined == 0 {
		t.Fatal("no flip was ever noticed: the test is not reaching the tree")
	}
}
