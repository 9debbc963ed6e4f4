package buffer

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A side file keeps its state across a restart of lablog, but one left
// open by another boot (a power cut: its pages were never fsynced) is
// dropped and reported fresh. It writes nothing to the buffer file.
func TestSideFileSurvivesRestartNotPowerCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	open := func() (*DB, *SideFile, bool) {
		t.Helper()
		db, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		f, fresh, err := db.OpenSide("x")
		if err != nil {
			t.Fatal(err)
		}
		return db, f, fresh
	}
	value := func(f *SideFile) string {
		var v []byte
		if err := f.View("b", func(b *bolt.Bucket) error {
			if b != nil {
				v = append(v, b.Get([]byte("k"))...)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	db, f, fresh := open()
	syncs := db.Fsyncs()
	if !fresh {
		t.Error("a new side file not reported fresh")
	}
	if err := f.Update("b", func(b *bolt.Bucket) error { return b.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if n := db.Fsyncs() - syncs; n != 0 {
		t.Errorf("a side file's write made %d fsyncs of the buffer", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, f, fresh = open()
	if fresh || value(f) != "v" {
		t.Errorf("after a restart: fresh %v, value %q; want the state kept", fresh, value(f))
	}
	// A kill: the marker stays, from this boot; the state is kept.
	marker, err := os.ReadFile(path + ".x.open")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bolt.Close(); err != nil {
		t.Fatal(err)
	}
	db.sides = nil
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, f, fresh = open()
	if fresh || value(f) != "v" {
		t.Errorf("after a kill: fresh %v, value %q; want the state kept", fresh, value(f))
	}
	// A power cut: the marker of another boot.
	if err := f.bolt.Close(); err != nil {
		t.Fatal(err)
	}
	db.sides = nil
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".x.open", append([]byte("another-"), marker...), 0o600); err != nil {
		t.Fatal(err)
	}
	db, f, fresh = open()
	defer db.Close()
	if !fresh || value(f) != "" {
		t.Errorf("after a power cut: fresh %v, value %q; want a new, empty file", fresh, value(f))
	}
}
