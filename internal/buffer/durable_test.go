package buffer

import (
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/frame"
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
	src := filepath.Join(t.TempDir(), "full.db")
	db, err := Open(src, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, 30000)
	_ = db.Close()
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
	src := filepath.Join(t.TempDir(), "full.db")
	db, err := Open(src, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := fill(t, db, 20000)
	id := db.ID()
	_ = db.Close()
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
	gunzip(t, "../compactor/testdata/v1/buffer.db.gz", path)
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
	t.Cleanup(func() { scanBytes, betweenScans = 4<<20, nil })
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
	scanBytes = 1
	betweenScans = func() {
		if txs++; txs > 100 {
			panic("Scan makes no progress")
		}
	}
	t.Cleanup(func() { scanBytes, betweenScans = 4<<20, nil })
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
