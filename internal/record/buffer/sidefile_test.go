package buffer

import (
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openSide opens the buffer at path and its side file "x"; fresh is
// OpenSide's.
func openSide(t *testing.T, path string) (db *DB, f *SideFile, fresh bool) {
	t.Helper()
	db, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f, fresh, err = db.OpenSide("x")
	if err != nil {
		t.Fatal(err)
	}
	return db, f, fresh
}

// A side file keeps its state across a restart of lablog, but one left
// open by another boot (a power cut: its pages were never fsynced) is
// dropped and reported fresh. It writes nothing to the buffer file.
func TestSideFileSurvivesRestartNotPowerCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	open := func() (*DB, *SideFile, bool) { t.Helper(); return openSide(t, path) }
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

// Opening a side file must not read all of it: the analytics store of a
// busy lab holds more than the buffer, and lablog opens it at every start
// of the daemon and of lablog compact. bbolt rebuilds a freelist that was
// not written by walking every page, which made all of the file resident
// (the kernel maps 64 KiB around each page read).
func TestSideFileOpenReadsLittleOfIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	db, f, _ := openSide(t, path)
	value := make([]byte, 100)
	for batch := range 40 {
		if err := f.Update("b", func(b *bolt.Bucket) error {
			for i := range 2000 {
				if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(batch*2000+i)), value); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path + ".x")
	if err != nil {
		t.Fatal(err)
	}
	db, _, _ = openSide(t, path)
	defer db.Close()
	resident, size := mappedKiB(t, path+".x"), st.Size()>>10
	t.Logf("side file %d KiB, %d KiB of it resident after open", size, resident)
	if resident > size/4 {
		t.Errorf("after open, %d KiB of the %d KiB side file is resident; want under a quarter", resident, size)
	}
}
