package compactor

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// reopen closes the fixture's buffer and opens the file at path (a fresh
// one when it does not exist) in its place.
func (f *fixture) reopen(path string) {
	f.t.Helper()
	_ = f.db.Close()
	db := testkit.OpenBuffer(f.t, path, buffer.Options{})
	f.db = db
	f.c.db = db
}

// TestFreshBufferBesideAnArchive: a buffer that starts again from seq 1
// (deleted, emptied or quarantined file) next to an archive holding files of
// the same stream and hour must archive every new record, delete none.
func TestFreshBufferBesideAnArchive(t *testing.T) {
	for _, how := range []string{"deleted", "emptied", "crash window"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t)
			h := frame.Hour(t0.Add(-2 * time.Hour))
			f.record(h, 40, "spin30", "spin31")
			path := f.db.Path()
			oldID := f.db.ID()
			if how == "crash window" {
				// The old buffer published spin30 and died before settling,
				// then the card was swapped: the old records are archived,
				// the new buffer has others under the same seqs.
				f.publishUnsettled("spin30", h)
				_ = f.db.Close()
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				if res := f.c.RunOnce(context.Background()); res.Err != nil || res.Files != 2 {
					t.Fatalf("first run %+v", res)
				}
				_ = f.db.Close()
				if how == "deleted" {
					err := os.Remove(path)
					if err != nil {
						t.Fatal(err)
					}
				} else if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
			}
			f.reopen(path)
			if f.db.ID() == oldID {
				t.Fatal("the new buffer has the old id")
			}
			f.record(h.Add(10*time.Minute), 25, "spin30", "spin31") // seqs 1-25 again
			res := f.c.RunOnce(context.Background())
			if res.Err != nil || res.Records != 50 {
				t.Fatalf("second run %+v, want the 50 new records archived", res)
			}
			want := 65
			if got := f.archived(); got["spin30"] != want || (how != "crash window" && got["spin31"] != want) {
				t.Fatalf("archived %v, want %d of each stream", got, want)
			}
			if f.pending() != 0 {
				t.Fatalf("%d records left", f.pending())
			}
		})
	}
}

// TestConflictingFileKeepsRecords: a file with this buffer's identity and
// range but other frames (a buffer restored from a backup, say) must not
// settle the buffer's records.
func TestConflictingFileKeepsRecords(t *testing.T) {
	f := newFixture(t)
	var faults []string
	var mu sync.Mutex
	f.c.opts.Fault = func(kind fault.Kind, detail string, n int64) {
		mu.Lock()
		faults = append(faults, fmt.Sprintf("%s %d %s", kind, n, detail))
		mu.Unlock()
	}
	h := frame.Hour(t0.Add(-2 * time.Hour))
	f.record(h, 10, "spin30")
	w, err := archive.Create(f.root, "spin30", h, archive.Options{BufferID: f.db.ID()})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 10; seq++ {
		r := frame.Record{Stream: "spin30", Received: h, Kind: frame.Text, Data: []byte(fmt.Sprintf(`{"other":%d}`, seq))}
		if err := w.Add(archive.Entry{Seq: seq, Rec: r}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Publish(); err != nil {
		t.Fatal(err)
	}
	res := f.c.RunOnce(context.Background())
	if res.Files != 0 || f.pending() != 10 {
		t.Fatalf("result %+v with %d pending; want nothing settled", res, f.pending())
	}
	if len(faults) != 1 || !strings.HasPrefix(faults[0], string(fault.IdentityConflict)+" 10 ") {
		t.Fatalf("faults %q, want one identity conflict of 10 records", faults)
	}
}

// TestDamagedBlockIsSetAside flips a byte in a stored block: its records
// are set aside with their stored bytes and reported, the others archived.
func TestDamagedBlockIsSetAside(t *testing.T) {
	f := newFixture(t)
	var faults []string
	f.c.opts.Fault = func(kind fault.Kind, detail string, n int64) { faults = append(faults, fmt.Sprintf("%s %d", kind, n)) }
	h := frame.Hour(t0.Add(-2 * time.Hour))
	for i := range 3 { // three blocks of 20
		f.record(h.Add(time.Duration(i)*time.Minute), 20, "spin30")
	}
	path := f.db.Path()
	_ = f.db.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("blocks")).Bucket([]byte("spin30"))
		c := b.Cursor()
		c.First()
		k, v := c.Next() // the second block
		damaged := append([]byte(nil), v...)
		damaged[len(damaged)/2] ^= 0x20
		return b.Put(append([]byte(nil), k...), damaged)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	f.reopen(path)
	res := f.c.RunOnce(context.Background())
	if res.Err != nil || res.Records != 40 || res.SetAside != 20 {
		t.Fatalf("result %+v, want 40 archived and 20 set aside", res)
	}
	if got := f.archived(); got["spin30"] != 40 {
		t.Fatalf("archived %v", got)
	}
	if len(faults) != 1 || faults[0] != string(fault.RecordsSetAside)+" 20" {
		t.Fatalf("faults %v", faults)
	}
	kept, _ := filepath.Glob(filepath.Join(f.db.DamagedDir(), "*.block"))
	if len(kept) != 1 || f.pending() != 0 {
		t.Fatalf("kept %v, %d pending", kept, f.pending())
	}
}

// TestFormat1BufferArchivedExactlyOnce opens a buffer made by format 1 next
// to the archive format 1 wrote (see testdata/v1/genv1.go.txt): one hour
// archived and settled, one published but not settled (power cut).
func TestFormat1BufferArchivedExactlyOnce(t *testing.T) {
	f := newFixture(t)
	copyTree(t, "testdata/v1/archive", f.root)
	path := filepath.Join(t.TempDir(), "buffer.db")
	gunzipFile(t, "testdata/v1/buffer.db.gz", path)
	f.reopen(path)
	if f.db.Migrated() != 780 {
		t.Fatalf("migrated %d records, want 780", f.db.Migrated())
	}
	f.now = time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	res := f.c.RunOnce(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	// spin30's 13h (120 records) was in the archive already.
	if res.Records != 780-120 {
		t.Fatalf("archived %d records, want 660 (120 were archived before)", res.Records)
	}
	if got := f.archived(); got["spin30"] != 300 || got["spin31"] != 301 || got["pend-01"] != 300 {
		t.Fatalf("archived %v, want every record of the fixture once", got)
	}
	if f.pending() != 0 {
		t.Fatalf("%d left", f.pending())
	}
}

// TestEarlyPartFilesWhenHalfFull: past half of max_size the open hour is
// archived too, before frames would be refused.
func TestEarlyPartFilesWhenHalfFull(t *testing.T) {
	f := newFixture(t)
	path := f.db.Path()
	_ = f.db.Close()
	db := testkit.OpenBuffer(t, path, buffer.Options{MaxSize: 4 << 20, InitialMmapSize: 1 << 20})
	f.db, f.c.db = db, db
	f.c.TriggerIfFull() // not full: no trigger
	select {
	case <-f.c.trigger:
		t.Fatal("triggered while nearly empty")
	default:
	}
	for f.db.Used() < 2<<20 {
		var recs []frame.Record
		for i := range 200 {
			recs = append(recs, frame.Record{Stream: "spin30", Received: t0, Kind: frame.Text, Data: noise(1000 + i)})
		}
		if err := f.db.Append(recs); err != nil {
			t.Fatal(err)
		}
	}
	f.c.TriggerIfFull()
	select {
	case <-f.c.trigger:
	default:
		t.Fatal("no trigger past half full")
	}
	res := f.c.RunOnce(context.Background()) // t0's hour is still open
	if res.Err != nil || !res.Early || res.Files != 1 || f.pending() != 0 {
		t.Fatalf("result %+v, %d pending; want the open hour archived early", res, f.pending())
	}
	if f.db.Used() != 0 {
		t.Fatalf("used %d after archiving everything", f.db.Used())
	}
}

// noise is incompressible data of n bytes.
func noise(n int) []byte {
	b := make([]byte, n)
	x := uint32(n)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func gunzipFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
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
