package archive_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	marked := t.TempDir()
	os.WriteFile(filepath.Join(marked, archive.MarkerFile), nil, 0o644)

	cases := []struct {
		root, require string
		want          error // nil: usable
	}{
		{marked, "marker", nil},
		{dir, "marker", archive.ErrNotMounted},
		{filepath.Join(dir, "absent"), "marker", archive.ErrNoTarget},
		{dir, "mountpoint", archive.ErrNotMounted}, // a temp dir is not a mount point
		{"/", "mountpoint", nil},
		{"/proc", "mountpoint", nil},
		{dir, "none", nil},
		{filepath.Join(dir, "absent"), "none", archive.ErrNoTarget},
		{file, "none", archive.ErrNoTarget},
	}
	for _, c := range cases {
		err := archive.CheckTarget(c.root, c.require)
		if c.root == "/" || c.root == "/proc" {
			// Only the mount check matters; they may not be writable here.
			if errors.Is(err, archive.ErrNotMounted) || errors.Is(err, archive.ErrNoTarget) {
				t.Errorf("CheckTarget(%s, %s) = %v, want it seen as a mount point", c.root, c.require, err)
			}
			continue
		}
		if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("CheckTarget(%s, %s) = %v, want %v", c.root, c.require, err, c.want)
		}
	}

	err := archive.CheckTarget("/media/lablog-test-absent", "marker")
	if want := "archive /media/lablog-test-absent: does not exist"; err == nil || err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	err = archive.CheckTarget(dir, "marker")
	if want := "archive " + dir + ": not mounted (no .lablog-archive marker); refusing to write to the SD card"; err == nil || err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	var te *archive.TargetError
	if !errors.As(err, &te) || te.Root != dir {
		t.Errorf("error %v is not a *TargetError for %s", err, dir)
	}
	if err := archive.CheckTarget(dir, "usb"); err == nil {
		t.Error("unknown requirement accepted")
	}
}

func TestCheckTargetReadOnly(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may write to a mode 0555 directory")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := archive.CheckTarget(dir, "none"); !errors.Is(err, archive.ErrReadOnly) {
		t.Errorf("CheckTarget on a read-only dir = %v, want ErrReadOnly", err)
	}
}

func TestFreeBytes(t *testing.T) {
	n, err := archive.FreeBytes(t.TempDir())
	if err != nil || n == 0 {
		t.Errorf("FreeBytes = %d, %v", n, err)
	}
	if _, err := archive.FreeBytes(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("FreeBytes of a missing dir did not fail")
	}
}

func TestCleanTempSkipsForeignFolders(t *testing.T) {
	root := t.TempDir()
	lf := filepath.Join(root, "lost+found")
	if err := os.Mkdir(lf, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lf, ".x.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(root, "stream=spin30", "date=2026-11-26")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(part, ".spin30-20261126T14-1.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := archive.CleanTemp(root)
	if err != nil || n != 1 {
		t.Fatalf("CleanTemp = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(filepath.Join(lf, ".x.tmp")); err != nil {
		t.Errorf("touched a file outside the partition folders: %v", err)
	}
}

func TestPublishedFilesAreForTheGroupOnly(t *testing.T) {
	root := t.TempDir()
	w, err := archive.Create(root, "spin30", time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC), archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(archive.Entry{Seq: 1, Rec: frame.Record{Stream: "spin30", Kind: frame.Text,
		Received: time.Date(2026, 11, 26, 14, 1, 0, 0, time.UTC), Data: []byte(`{"user":"u"}`)}}); err != nil {
		t.Fatal(err)
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	// Student data on a multi-user server: the file for the service's
	// group (where an admin who rsyncs it belongs), nothing for others.
	for p, want := range map[string]os.FileMode{
		path:                             0o640,
		filepath.Dir(path):               0o750 | os.ModeDir,
		filepath.Dir(filepath.Dir(path)): 0o750 | os.ModeDir,
	} {
		st, err := os.Stat(p)
		if err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
}
