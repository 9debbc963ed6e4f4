package archive_test

import (
	"fmt"
	"testing"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// The compactor hands Add records whose bytes live in a block buffer it
// reuses (or in the buffer's mapped pages, valid only during its read):
// Add must be done with them when it returns. One buffer, overwritten
// before every Add, must still give a file with every frame as it was,
// text (raw) and not UTF-8 (raw_bytes) alike.
func TestAddKeepsNoReferenceToTheEntrysBytes(t *testing.T) {
	root := t.TempDir()
	w, err := archive.Create(root, "spin30", hour14, archive.Options{RowGroupRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	const frames = 2000
	want := make(map[uint64]string, frames)
	shared := make([]byte, 0, 128)
	for seq := uint64(1); seq <= frames; seq++ {
		// Every third frame is not UTF-8: its messages go to raw_bytes.
		s := string(rune('a' + seq%26))
		if seq%3 == 0 {
			s = "\xff"
		}
		shared = fmt.Appendf(shared[:0], `{"n":%06d,"s":"%s"}{"n":%06d}`, seq, s, seq)
		want[seq] = string(shared)
		e := entry(seq, frame.Text, "")
		e.Rec.Data = shared
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	if _, err := archive.VerifyFrames(path, func(seq uint64, _ frame.Kind, data []byte) error {
		seen++
		if string(data) != want[seq] {
			return fmt.Errorf("seq %d: %q, want %q", seq, data, want[seq])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seen != frames {
		t.Fatalf("%d frames read back, want %d", seen, frames)
	}
}
