package salvage_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/salvage"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/testkit"
)

var hour0 = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

// counts: three streams large enough for trees of many pages, and one so
// small that bbolt keeps its bucket inline in its parent's page.
var counts = map[string]int{"spin30": 1500, "spin31": 1400, "pend00": 1025, "tiny": 3}

// quarantined fills a real buffer, damages it, lets buffer.Open quarantine
// it (as lablog run does) and returns the quarantined file. bbolt lays
// pages out differently each time: damage may ask for another buffer when
// this one's layout does not allow it (false), five times at most.
func quarantined(t *testing.T, damage func(t *testing.T, path string) bool) (string, map[testkit.RecordID]frame.Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buffer.db")
	var want map[testkit.RecordID]frame.Record
	for try := 0; ; try++ {
		if try == 5 {
			t.Fatal("five buffers, and none could be damaged this way")
		}
		_ = os.Remove(path)
		_, want = testkit.FillBuffer(t, path, hour0, counts)
		if damage(t, path) {
			break
		}
	}
	db := testkit.OpenBuffer(t, path, buffer.Options{})
	q := db.Quarantined()
	if q == "" {
		t.Fatal("the damaged buffer was not quarantined")
	}
	return q, want
}

func openRoot(t *testing.T) *archive.Root {
	t.Helper()
	root, err := archive.OpenRoot(t.TempDir(), archive.RequireNone)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Close() })
	return root
}

// flipLeafPage inverts every byte of a live leaf page that holds blocks of
// one stream. Not the leaf of the blocks bucket itself: that one holds the
// inline "tiny" bucket, whose first key is the same, and flipping it would
// lose every stream at once.
func flipLeafPage(t *testing.T, path string) bool {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := int64(db.Info().PageSize)
	key := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(hour0.Unix())), 1)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := int64(-1)
	err = db.Update(func(tx *bolt.Tx) error { // tx.Page wants a writable transaction
		for id := 2; page < 0; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			at := int64(id) * ps
			if info.Type == "leaf" && !holdsBuckets(b[at:], info.Count) && bytes.Contains(b[at:at+ps*int64(1+info.OverflowCount)], key) {
				page = at
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil || page < 0 {
		t.Fatalf("no live leaf page of blocks (%v)", err)
	}
	for i := page; i < page+ps; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return true
}

// holdsBuckets reports whether any of the count elements of the leaf page
// at p is a bucket (bbolt's leaf element: flags, pos, ksize, vsize, each a
// uint32 after the 16-byte page header; flag 1 marks a bucket).
func holdsBuckets(p []byte, count int) bool {
	for i := 0; i < count; i++ {
		if binary.LittleEndian.Uint32(p[16+16*i:])&1 != 0 {
			return true
		}
	}
	return false
}

// truncate cuts the file short, as a power cut while it grows can: just
// past the top of the tree (the root, the buckets of the streams and the
// buffer's own), so what the cut takes is blocks. The records of "tiny"
// are settled first (as after their compaction): that commit rewrites the
// top of the tree into free pages lower in the file, as later commits do.
func truncate(t *testing.T, path string) bool {
	db := testkit.OpenBuffer(t, path, buffer.Options{})
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Stream == "tiny" {
			if _, err := db.Settle(g, 0, ^uint64(0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The current meta page (the higher transaction id) names the root.
	le := binary.LittleEndian
	ps := int64(le.Uint32(b[16+8:]))
	meta := b[16:]
	if other := b[ps+16:]; le.Uint64(other[48:]) > le.Uint64(meta[48:]) {
		meta = other
	}
	top, inUse := le.Uint64(meta[16:]), int64(le.Uint64(meta[40:]))
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			top = max(top, uint64(b.Root()))
			return b.ForEachBucket(func(stream []byte) error {
				top = max(top, uint64(b.Bucket(stream).Root()))
				return nil
			})
		})
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	cut := int64(top) + 1
	if cut >= inUse-1 {
		return false // too few pages past the top of the tree: build it again
	}
	if err := os.Truncate(path, cut*ps); err != nil {
		t.Fatal(err)
	}
	return true
}

// TestSalvageArchivesEveryIntactRecordOnce damages real buffers three ways;
// each is quarantined at open and salvaged: every record that could be read
// is archived exactly once with its exact bytes, the rest is counted as
// unreadable, and a second salvage adds nothing.
func TestSalvageArchivesEveryIntactRecordOnce(t *testing.T) {
	total := 0
	for _, n := range counts {
		total += n
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, path string) bool
		lost   int // records lost, when known exactly
		gone   int // records settled (archived) before the damage
	}{
		{"one bad inline bucket", func(t *testing.T, path string) bool { testkit.BreakInlineBucket(t, path, "tiny"); return true }, counts["tiny"], 0},
		{"a flipped page", flipLeafPage, -1, 0},
		{"a truncated file", truncate, -1, counts["tiny"]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, want := quarantined(t, c.damage)
			root := openRoot(t)
			rep, err := salvage.Salvage(context.Background(), root, q, salvage.Options{RowGroupRows: 1000})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", rep)
			got := testkit.ArchivedFrames(t, root.Path())
			for id, recs := range got {
				w, ok := want[id]
				if !ok || len(recs) != 1 || recs[0].Kind != w.Kind || !bytes.Equal(recs[0].Data, w.Data) {
					t.Fatalf("%v archived %d times, want once as %q", id, len(recs), w.Data)
				}
			}
			if int64(len(got)) != rep.Archived {
				t.Errorf("%d records in the archive, the report says %d", len(got), rep.Archived)
			}
			if !rep.CountsRead || rep.Unreadable == 0 || rep.Archived == 0 || len(got)+int(rep.Unreadable) != total-c.gone {
				t.Errorf("%d archived + %d unreadable (counts read: %v), want %d in all, some of each", len(got), rep.Unreadable, rep.CountsRead, total-c.gone)
			}
			if c.lost >= 0 && int(rep.Unreadable) != c.lost {
				t.Errorf("%d unreadable, want %d", rep.Unreadable, c.lost)
			}
			if len(rep.Lost) == 0 || !rep.Problems() {
				t.Errorf("the report names nothing it could not read: %+v", rep)
			}
			if !buffer.Salvaged(q) {
				t.Error("the file is not marked salvaged")
			}
			if files, problems := archive.VerifyTree(root.Path()); len(problems) > 0 || files != rep.Files {
				t.Errorf("verify tree: %d files (report: %d), problems %v", files, rep.Files, problems)
			}

			again, err := salvage.Salvage(context.Background(), root, q, salvage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if again.Archived != 0 || again.Files != 0 || again.Already != rep.Archived || again.Unreadable != rep.Unreadable {
				t.Errorf("second salvage: %+v, want nothing added and %d already archived", again, rep.Archived)
			}
			if after := testkit.ArchivedFrames(t, root.Path()); len(after) != len(got) {
				t.Errorf("second salvage: %d records archived, was %d", len(after), len(got))
			}
			checkWithDuckDB(t, root.Path(), got, want)
		})
	}
}

// checkWithDuckDB reads the archive with DuckDB, which shares no code with
// lablog: one row per archived record, each with its exact text.
func checkWithDuckDB(t *testing.T, root string, got map[testkit.RecordID][]frame.Record, want map[testkit.RecordID]frame.Record) {
	t.Helper()
	from := fmt.Sprintf("read_parquet('%s', hive_partitioning=true)", strings.ReplaceAll(filepath.Join(root, "**", "*.parquet"), "'", "''"))
	rows := duckdbtest.Query(t, "SELECT buffer_id, stream, seq, raw FROM "+from+" ORDER BY stream, seq")
	if len(rows) != len(got) {
		t.Fatalf("DuckDB reads %d rows, want %d", len(rows), len(got))
	}
	for _, r := range rows {
		seq, err := r["seq"].(interface{ Int64() (int64, error) }).Int64()
		if err != nil {
			t.Fatal(err)
		}
		id := testkit.RecordID{BufferID: fmt.Sprint(r["buffer_id"]), Stream: fmt.Sprint(r["stream"]), Seq: uint64(seq)}
		if w, ok := want[id]; !ok || r["raw"] != string(w.Data) {
			t.Fatalf("DuckDB reads %v as %q, want %q", id, r["raw"], w.Data)
		}
	}
}

// TestSalvageKeepsWhatACompactionPublished: records a compaction published
// before the quarantine (and never removed from the buffer) are not
// archived twice.
func TestSalvageKeepsWhatACompactionPublished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	id, want := testkit.FillBuffer(t, path, hour0, counts)
	root := openRoot(t)
	// What a compaction interrupted before its removal left: spin30's
	// first hour, published.
	w, err := root.Create("spin30", hour0, archive.Options{BufferID: id})
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	for seq := uint64(1); ; seq++ {
		r, ok := want[testkit.RecordID{BufferID: id, Stream: "spin30", Seq: seq}]
		if !ok || !r.Received.Before(hour0.Add(time.Hour)) {
			break
		}
		if err := w.Add(archive.Entry{Seq: seq, Rec: r}); err != nil {
			t.Fatal(err)
		}
		published++
	}
	if _, err := w.Publish(); err != nil {
		t.Fatal(err)
	}
	testkit.BreakInlineBucket(t, path, "tiny")
	db := testkit.OpenBuffer(t, path, buffer.Options{})
	rep, err := salvage.Salvage(context.Background(), root, db.Quarantined(), salvage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Already != int64(published) || int(rep.Archived)+published+counts["tiny"] != len(want) {
		t.Errorf("%+v, want %d already archived and the rest but tiny's archived now", rep, published)
	}
	for id, recs := range testkit.ArchivedFrames(t, root.Path()) {
		if len(recs) != 1 {
			t.Fatalf("%v archived %d times", id, len(recs))
		}
	}
}

// TestSalvageOfUnreadableFile: a file without a valid meta page yields
// nothing and says so; it is marked, so it is not tried at every run.
func TestSalvageOfUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db.corrupt-20261126T140000Z")
	if err := os.WriteFile(path, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := salvage.Salvage(context.Background(), openRoot(t), path, salvage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Archived != 0 || !rep.Problems() || len(rep.Lost) != 1 || !strings.Contains(rep.Lost[0], "meta") {
		t.Errorf("report %+v", rep)
	}
	if !buffer.Salvaged(path) {
		t.Error("not marked salvaged")
	}
}
