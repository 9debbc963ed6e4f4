package buffer

import (
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// Opening a side file must not read all of it: the analytics store of a
// busy lab holds more than the buffer, and lablog opens it at every start
// of the daemon and of lablog compact. bbolt rebuilds a freelist that was
// not written by walking every page, which made all of the file resident
// (the kernel maps 64 KiB around each page read).
func TestSideFileOpenReadsLittleOfIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	open := func() (*DB, *SideFile) {
		t.Helper()
		db, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := db.OpenSide("x")
		if err != nil {
			t.Fatal(err)
		}
		return db, f
	}
	db, f := open()
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
	db, _ = open()
	defer db.Close()
	resident := mappedRSS(t, path+".x")
	t.Logf("side file %d KiB, %d KiB of it resident after open", st.Size()>>10, resident>>10)
	if resident > st.Size()/4 {
		t.Errorf("after open, %d KiB of the %d KiB side file is resident; want under a quarter", resident>>10, st.Size()>>10)
	}
}

// mappedRSS is the resident size of this process's mappings of path.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var rss int64
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) == 6 && f[5] == path
		case in && len(f) == 3 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss += kb << 10
		}
	}
	return rss
}
