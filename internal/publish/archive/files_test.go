package archive_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// Files lists what was published, in lexical order, and nothing else: not a
// writer's temporary file, not the marker, not other files; FilesOfDay
// keeps one UTC date.
func TestFilesListsPublishedFilesOnly(t *testing.T) {
	root := t.TempDir()
	nextDay := hour14.Add(24 * time.Hour)
	want := []string{
		write(t, root, "spin31", hour14, archive.Options{}, entry(1, frame.Text, `{"a":1}`)),
		write(t, root, "spin30", nextDay, archive.Options{}, entry(2, frame.Text, `{"a":2}`)),
		write(t, root, "spin30", hour14, archive.Options{}, entry(3, frame.Text, `{"a":3}`)),
	}
	slices.Sort(want)
	dir := filepath.Dir(want[0])
	for _, name := range []string{".spin30-x.parquet.tmp", "notes.txt", ".lablog-archive"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := archive.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path)
		if st, err := os.Stat(f.Path); err != nil || st.Size() != f.Size {
			t.Errorf("%s: size %d, stat %v", f.Path, f.Size, err)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %v\nwant %v", got, want)
	}
	if day := archive.FilesOfDay(root, hour14); len(day) != 2 {
		t.Errorf("FilesOfDay(%s) = %v, want the two files of that date", hour14.Format("2006-01-02"), day)
	}
	if empty, err := archive.Files(t.TempDir()); err != nil || len(empty) != 0 {
		t.Errorf("Files of an empty folder = %v, %v", empty, err)
	}
	if _, err := archive.Files(filepath.Join(root, "missing")); err == nil {
		t.Error("Files of a missing folder: no error")
	}
}
