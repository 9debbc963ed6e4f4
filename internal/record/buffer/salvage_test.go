package buffer

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// Two quarantines in the same second keep both files: a rename onto the
// first name would replace the first damaged buffer, records and all.
func TestQuarantineNamesNeverRepeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for range 3 {
		name := quarantineName(path, now)
		if seen[name] {
			t.Fatalf("%s named twice", name)
		}
		seen[name] = true
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := QuarantinedFiles(path)
	if err != nil || len(files) != 3 {
		t.Fatalf("quarantined files %v (%v), want 3", files, err)
	}
}

// TestStrandedReadSurvivesEveryTreeByteFlipped flips, one at a time, every
// byte of the page header and first two elements of tree pages of a
// buffer, as TestEveryTreeByteFlipped does for Open: reading what is left never
// crashes, every record it yields went in with that identity, and none
// twice.
func TestStrandedReadSurvivesEveryTreeByteFlipped(t *testing.T) {
	src, want, id := filledFile(t, 30000)
	pages := flipPages(t, src)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "buffer.db.corrupt-x")
	if n, lost := strandedRecords(t, src); n != 30000 || len(lost) > 0 {
		t.Fatalf("the healthy file read as %d records, lost %q", n, lost)
	}
	var flips, lost int
	for _, page := range pages {
		for off := page; off < page+16+2*16; off++ {
			damaged := slices.Clone(orig)
			damaged[off] ^= 0xff
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			flips++
			s, err := ReadStranded(path)
			if err != nil {
				t.Fatalf("byte %d flipped: %v", off, err)
			}
			if len(s.Lost) > 0 {
				lost++
			}
			for _, g := range s.Groups() {
				seen := map[uint64]bool{}
				_, err := s.Scan(g, func(seq uint64, r frame.Record) error {
					ok := g.BufferID == id && seq >= 1 && seq <= uint64(len(want[g.Stream])) && !seen[seq] &&
						reflect.DeepEqual(r, want[g.Stream][seq-1])
					if !ok {
						return fmt.Errorf("seq %d of %v came out as %q, which never went in (or twice)", seq, g, r.Data)
					}
					seen[seq] = true
					return nil
				})
				if err != nil {
					t.Fatalf("byte %d flipped (page at %d, byte %d of it; lost %q): %v", off, page, off-page, s.Lost, err)
				}
			}
			_ = s.Close()
		}
	}
	t.Logf("%d single-byte flips in %d tree pages: %d with parts unreadable", flips, len(pages), lost)
	if lost == 0 {
		t.Fatal("no flip was ever noticed: the test is not reaching the tree")
	}
}

// strandedRecords counts the records ReadStranded finds in path.
func strandedRecords(t *testing.T, path string) (int, []string) {
	t.Helper()
	s, err := ReadStranded(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for _, g := range s.Groups() {
		if _, err := s.Scan(g, func(uint64, frame.Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n, s.Lost
}

// A format-1 buffer's records are not salvaged: that is said, and their
// number is not claimed known.
func TestStrandedFormat1IsReported(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db.corrupt-x")
	gunzip(t, "../../publish/compactor/testdata/v1/buffer.db.gz", path)
	s, err := ReadStranded(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.CountsRead || len(s.Lost) == 0 || !strings.Contains(s.Lost[len(s.Lost)-1], "format 1") {
		t.Errorf("counts read %v, lost %q; want format 1 reported", s.CountsRead, s.Lost)
	}
}
