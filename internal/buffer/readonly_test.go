package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/practable/lablog/internal/frame"
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
