package docs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository's top folder, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Every relative link and anchor in README.md and docs/*.md resolves.
func TestRepositoryLinksResolve(t *testing.T) {
	files, err := Files(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found only %v: no docs/*.md?", files)
	}
	problems, checked, err := Check(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// The README links every docs file; far fewer links means the parser
	// stopped seeing them.
	if checked < len(files) {
		t.Errorf("checked %d links in %d files: the parser misses links", checked, len(files))
	}
	t.Logf("%d relative links in %d files", checked, len(files))
}

// Every docs/*.md is linked from the README, so nothing moved out of it is
// lost from view.
func TestReadmeLinksEveryDoc(t *testing.T) {
	root := repoRoot(t)
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, l := range p.links {
		path, _, _ := strings.Cut(l.Target, "#")
		targets = append(targets, path)
	}
	for _, f := range files[1:] {
		rel := "docs/" + filepath.Base(f)
		if !slices.Contains(targets, rel) {
			t.Errorf("README.md does not link %s", rel)
		}
	}
}

// The README stays an entry page; the detail lives in docs/.
func TestReadmeShort(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n > 250 {
		t.Errorf("README.md has %d lines, want at most 250: move the detail to docs/", n)
	}
}

func TestAnchor(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Two commands", "two-commands"},
		{"HTTP ingest: `/addLog` for today's lab UIs", "http-ingest-addlog-for-todays-lab-uis"},
		{"Install on an existing Raspberry Pi OS or Debian/Ubuntu server", "install-on-an-existing-raspberry-pi-os-or-debianubuntu-server"},
		{"`GET /api/status`", "get-apistatus"},
		{"Build the image: `make image`", "build-the-image-make-image"},
		{"What is kept, and the loss window", "what-is-kept-and-the-loss-window"},
		{"relay serve (the cloud side)", "relay-serve-the-cloud-side"},
		{"`relay_host:`", "relay_host"},
		{"A websocket frame's route", "a-websocket-frames-route"},
	} {
		if got := Anchor(c.heading); got != c.want {
			t.Errorf("Anchor(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

// Check reports a missing file, a missing anchor (in this file and in
// another), an anchor into a folder, a broken link over two lines, and
// nothing for good links, links in code (blocks, or spans over two lines),
// absolute URLs or GitHub's numbered repeats of a heading.
func TestCheckFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("docs/b.md", "# B\n\n## Setup: `make x`\n\n## Notes\n\n## Notes\n")
	write("src/main.go", "package main\n")
	a := write("README.md", strings.Join([]string{
		"# A",
		"## Here",
		"[ok](docs/b.md) [ok](docs/b.md#setup-make-x) [ok](#here) [ok](docs/b.md#notes-1) [ok](src/main.go) [ok](src)",
		"[ok](https://example.org/x#y) <https://example.org> [ok](docs/b.md \"title\")",
		"`[not a link](nowhere.md)`",
		"```",
		"[not a link](nowhere.md)",
		"```",
		"[gone](docs/c.md)",
		"[no anchor](docs/b.md#setup)",
		"[no anchor here](#there)",
		"[no third](docs/b.md#notes-2)",
		"[folder anchor](src#x)",
		"[ref]: docs/missing.md",
		"",
		"[a link over", "two lines](docs/b.md#notes) and a `code span over", "[two lines](nowhere.md)` too,",
		"[a broken link", "over two lines](docs/d.md)",
	}, "\n")+"\n")
	problems, checked, err := Check([]string{a})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Target)
	}
	want := []string{"docs/c.md", "docs/b.md#setup", "#there", "docs/b.md#notes-2", "src#x", "docs/missing.md", "docs/d.md"}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if checked != 15 {
		t.Errorf("checked %d relative links, want 15", checked)
	}
	if len(problems) == len(want) && (problems[0].Line != 9 || problems[6].Line != 19) {
		t.Errorf("reported at lines %d and %d, want 9 and 19", problems[0].Line, problems[6].Line)
	}
}
