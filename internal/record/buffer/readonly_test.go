package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/record/frame"
)

func TestOpenReadOnlyReadsWithoutChanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	if err := db.Append([]frame.Record{{Stream: "spin30", Received: at, Kind: frame.Text, Data: []byte(`{"a":1}`)}}); err != nil {
		t.Fatal(err)
	}
	id := db.ID()

	// While lablog holds it: refused at once.
	if _, err := OpenReadOnly(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open of a held buffer: %v, want ErrLocked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ro, err := OpenReadOnly(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ro.ID() != id {
		t.Errorf("id %s, want %s", ro.ID(), id)
	}
	groups, err := ro.Groups()
	if err != nil || len(groups) != 1 {
		t.Fatalf("groups %v %v", groups, err)
	}
	var got []string
	if _, err := ro.Scan(groups[0], 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		got = append(got, string(r.Data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != `{"a":1}` {
		t.Errorf("scanned %q", got)
	}
	// lablog cannot take it while it is read.
	if _, err := Open(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open while read: %v, want ErrLocked", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("the file changed while opened read-only")
	}

	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "missing.db"), Options{}); err == nil {
		t.Error("a missing buffer opened")
	}
}

// A panic inside bbolt while a side bucket is read or written (damaged
// pages) is an ErrSideCorrupt error, not a crash; DropSide removes the bucket.
func TestSideBucketDamageIsAnError(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "buffer.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.UpdateSide("x", func(b *bolt.Bucket) error { return b.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.ViewSide("x", func(*bolt.Bucket) error { panic("unexpected fault address") }); !errors.Is(err, ErrSideCorrupt) {
		t.Errorf("view: %v, want ErrSideCorrupt", err)
	}
	if err := db.UpdateSide("x", func(*bolt.Bucket) error { panic("page out of range") }); !errors.Is(err, ErrSideCorrupt) {
		t.Errorf("update: %v, want ErrSideCorrupt", err)
	}
	// The buffer still works, and the value written before is there.
	var v []byte
	if err := db.ViewSide("x", func(b *bolt.Bucket) error { v = append(v, b.Get([]byte("k"))...); return nil }); err != nil || string(v) != "v" {
		t.Errorf("after the panics: %q %v", v, err)
	}
	if err := db.DropSide("x"); err != nil {
		t.Fatal(err)
	}
	if err := db.ViewSide("x", func(b *bolt.Bucket) error {
		if b != nil {
			t.Error("the side bucket is still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.DropSide("x"); err != nil {
		t.Errorf("dropping a missing side bucket: %v", err)
	}
}
