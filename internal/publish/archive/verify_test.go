package archive_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// forge writes rows and metadata to path with parquet-go directly, to make
// the damaged files Verify must catch.
func forge(t *testing.T, path string, rows []archive.Row, meta map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := parquet.NewGenericWriter[archive.Row](f)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		w.SetKeyValueMetadata(k, v)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// good writes a valid three-frame file and returns its path, rows and
// metadata as a map.
func good(t *testing.T, root string) (string, []archive.Row, map[string]string) {
	t.Helper()
	path := write(t, root, "spin30", hour14, archive.Options{},
		entry(1, frame.Text, full+nanMsg), entry(2, frame.Binary, "\xff"), entry(3, frame.Connected, "ws://x"))
	rows, _, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	fi, _ := f.Stat()
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, kv := range pf.Metadata().KeyValueMetadata {
		meta[kv.Key] = kv.Value
	}
	return path, rows, meta
}

func TestVerifyCatchesDamage(t *testing.T) {
	cases := map[string]struct {
		damage func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string
		want   error
	}{
		"tampered checksum": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			meta[archive.KeyChecksum] = "sha256:" + strings.Repeat("0", 64)
			forge(t, path, rows, meta)
			return path
		}, archive.ErrChecksum},
		"altered raw": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			rows[1].Raw = s(strings.Replace(*rows[1].Raw, "NaN", "0.0", 1))
			forge(t, path, rows, meta)
			return path
		}, archive.ErrChecksum},
		"dropped row": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			forge(t, path, append(rows[:1], rows[2:]...), meta)
			return path
		}, archive.ErrMismatch},
		"name disagrees with metadata": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			renamed := filepath.Join(filepath.Dir(path), archive.FileName(archive.Name{Stream: "spin31", Hour: hour14, First: 1, Last: 3}))
			if err := os.Rename(path, renamed); err != nil {
				t.Fatal(err)
			}
			return renamed
		}, archive.ErrMismatch},
		"seq range disagrees": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			meta[archive.KeyLastSeq] = "4"
			forge(t, path, rows, meta)
			return path
		}, archive.ErrMismatch},
		"missing key": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			delete(meta, archive.KeyFrames)
			forge(t, path, rows, meta)
			return path
		}, archive.ErrMetadata},
		"raw and raw_bytes both null": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			rows[0].Raw = nil
			forge(t, path, rows, meta)
			return path
		}, archive.ErrMismatch},
		"truncated": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return path
		}, archive.ErrCorrupt},
		"not parquet": {func(t *testing.T, path string, rows []archive.Row, meta map[string]string) string {
			if err := os.WriteFile(path, []byte("PAR1 garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}, archive.ErrCorrupt},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			path, rows, meta := good(t, root)
			path = c.damage(t, path, rows, meta)
			if _, err := archive.Verify(path); !errors.Is(err, c.want) {
				t.Errorf("Verify: err = %v, want %v", err, c.want)
			}
			files, problems := archive.VerifyTree(root)
			if files != 1 || len(problems) != 1 || !errors.Is(problems[0].Err, c.want) {
				t.Errorf("VerifyTree = %d files, %v; want 1 file, one %v", files, problems, c.want)
			}
		})
	}
}

func TestVerifyTreeFindsDuplicatesAndMisplacedFiles(t *testing.T) {
	root := t.TempDir()
	a := write(t, root, "spin30", hour14, archive.Options{}, entry(1, frame.Text, legacy), entry(2, frame.Text, full+nanMsg))
	// A later file for the next hour, repeating seq 2 (a crash replayed it).
	write(t, root, "spin30", hour14.Add(time.Hour), archive.Options{}, entry(2, frame.Text, full+nanMsg), entry(3, frame.Text, legacy))
	// Same seqs in another stream are not duplicates.
	write(t, root, "spin31", hour14, archive.Options{}, entry(1, frame.Text, legacy), entry(2, frame.Text, legacy))
	// Interleaved seq ranges without shared rows are fine (late frames).
	write(t, root, "spin32", hour14, archive.Options{}, entry(1, frame.Text, legacy), entry(5, frame.Text, legacy))
	write(t, root, "spin32", hour14.Add(time.Hour), archive.Options{}, entry(3, frame.Text, legacy), entry(4, frame.Text, legacy))

	files, problems := archive.VerifyTree(root)
	if files != 5 || len(problems) != 1 || !errors.Is(problems[0].Err, archive.ErrDuplicate) {
		t.Fatalf("VerifyTree = %d files, %v; want 5 files, one duplicate", files, problems)
	}
	for _, p := range problems {
		if !errors.Is(p.Err, archive.ErrDuplicate) {
			t.Errorf("unexpected problem %v", p)
		}
	}
	if !strings.Contains(problems[0].Err.Error(), a) {
		t.Errorf("duplicate problem does not name the other file: %v", problems[0].Err)
	}

	// A valid file in the wrong stream's directory.
	root2 := t.TempDir()
	p := write(t, root2, "spin30", hour14, archive.Options{}, entry(1, frame.Text, legacy))
	moved := filepath.Join(root2, "stream=spin31", "date=2026-11-26", filepath.Base(p))
	os.MkdirAll(filepath.Dir(moved), 0o755)
	if err := os.Rename(p, moved); err != nil {
		t.Fatal(err)
	}
	if _, problems := archive.VerifyTree(root2); len(problems) != 1 || !errors.Is(problems[0].Err, archive.ErrMismatch) {
		t.Errorf("misplaced file: problems %v, want one ErrMismatch", problems)
	}
}

func TestCleanTemp(t *testing.T) {
	root := t.TempDir()
	checkTree(t, root)
	path := write(t, root, "spin30", hour14, archive.Options{}, entry(1, frame.Text, legacy))
	w, err := archive.Create(root, "spin30", hour14, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(entry(2, frame.Text, legacy)); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: the writer is never finished.
	if n := len(tempFiles(t, root)); n != 1 {
		t.Fatalf("%d temporary files, want 1", n)
	}
	if files, problems := archive.VerifyTree(root); files != 1 || len(problems) != 0 {
		t.Errorf("VerifyTree must ignore temporary files: %d, %v", files, problems)
	}
	removed, err := archive.CleanTemp(root)
	if err != nil || removed != 1 {
		t.Errorf("CleanTemp = %d, %v; want 1, nil", removed, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("CleanTemp touched a published file: %v", err)
	}
}

// A flipped bit anywhere in a file (a failing card or drive) makes every
// reader return an error or read on, never panic or run out of memory: a
// panic in parquet-go at open (a garbled footer or page index), or a page
// decoded with a codec the flip named (lz4 grows its buffer without bound),
// would take the daemon down with it. Files a flip leaves readable are fine
// here: Verify checks the frames' bytes, not every column.
func TestFlippedBitsNeverPanicAReader(t *testing.T) {
	path, _, _ := good(t, t.TempDir())
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const flips = 600 // one every ~11 bytes of the file, each bit in turn
	damaged := filepath.Join(t.TempDir(), filepath.Base(path))
	caught := 0
	for i := range flips {
		b := append([]byte(nil), orig...)
		at := 4 + i*(len(b)-8)/flips // past the leading magic, up to the trailing one
		b[at] ^= 1 << (i % 8)
		if err := os.WriteFile(damaged, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for name, read := range readers {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("%s panicked with bit %d of byte %d flipped: %v", name, i%8, at, p)
					}
				}()
				if err := read(damaged); err != nil && name == "Verify" {
					caught++
				}
			}()
		}
	}
	if caught == 0 {
		t.Fatalf("Verify caught none of %d flipped bits", flips)
	}
}
