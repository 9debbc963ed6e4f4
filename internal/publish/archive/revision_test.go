package archive_test

import (
	"path/filepath"
	"testing"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// A rewritten file carries its revision in its name and footer, and
// verifies like any other; the name parses back to the same identity.
func TestRevisionNamesAndVerifies(t *testing.T) {
	root := t.TempDir()
	id := "0123456789abcdef"
	e := entry(5, frame.Text, `{"user":"a"}`)
	plain := write(t, root, "spin-30", hour14, archive.Options{BufferID: id}, e)
	rev := write(t, root, "spin-30", hour14, archive.Options{BufferID: id, Revision: 12}, e)
	if plain == rev {
		t.Fatalf("revision 12 took the name of revision 0: %s", rev)
	}
	for path, want := range map[string]int{plain: 0, rev: 12} {
		m, err := archive.Verify(path)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := archive.ParseFileName(filepath.Base(path))
		if !ok || m.Revision != want || n.Revision != want || n != m.Name() || n.Stream != "spin-30" {
			t.Fatalf("%s: meta revision %d, name %+v (ok %v), want revision %d", path, m.Revision, n, ok, want)
		}
	}
	if got := filepath.Base(rev); got != "spin-30-20261126T14-"+id+"-00000000000000000005-00000000000000000005-r12.parquet" {
		t.Fatalf("name %s", got)
	}
	// Both files hold the same records: the tree check must call that a
	// duplicate, so a rewrite cannot sit beside the file it replaced.
	if _, problems := archive.VerifyTree(root); len(problems) == 0 {
		t.Fatal("VerifyTree accepted a file and its rewrite side by side")
	}
	for _, bad := range []string{"-r0", "-r01", "-r", "-rx"} {
		name := "spin30-20261126T14-" + id + "-00000000000000000005-00000000000000000005" + bad + ".parquet"
		if n, ok := archive.ParseFileName(name); ok {
			t.Errorf("%s parsed as %+v", name, n)
		}
	}
}
