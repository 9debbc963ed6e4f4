package archive_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// drive loop-mounts a fresh 16 MiB ext4 image holding the archive marker
// and returns its mount point. It needs root; the mount is lazily unmounted
// when the test ends, after the test's own cleanups (which close Roots).
func drive(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting a drive needs root")
	}
	base := t.TempDir()
	img, mnt := filepath.Join(base, "drive.img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"mkfs.ext4", "-q", "-F", img, "16M"},
		{"mount", "-o", "loop", img, mnt},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			t.Skipf("cannot make a loop-mounted drive here: %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { unmountAll(mnt) })
	if err := os.WriteFile(filepath.Join(mnt, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return mnt
}

// unmountAll lazily unmounts everything stacked on dir, best effort.
func unmountAll(dir string) {
	for range 5 {
		if exec.Command("umount", "-l", dir).Run() != nil {
			return
		}
	}
}

// yank lazily unmounts dir, as `umount -l` of a pulled drive does: open
// descriptors keep the file system alive, the path shows the bare folder.
func yank(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount -l %s: %v\n%s", dir, err, out)
	}
}

// contents lists everything under dir, relative to it.
func contents(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			rel, _ := filepath.Rel(dir, path)
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func openRoot(t *testing.T, path, require string) *archive.Root {
	t.Helper()
	r, err := archive.OpenRoot(path, require)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func startFile(t *testing.T, r *archive.Root) *archive.Writer {
	t.Helper()
	w, err := r.Create("spin30", hour14, archive.Options{BufferID: idA})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort)
	for seq := uint64(1); seq <= 20; seq++ {
		if err := w.Add(entry(seq, frame.Text, legacy)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// wantGone checks err is the *TargetError of a root that went away.
func wantGone(t *testing.T, what string, err error) {
	t.Helper()
	var te *archive.TargetError
	if !errors.As(err, &te) || !errors.Is(err, archive.ErrNotMounted) {
		t.Errorf("%s: %v, want a *TargetError wrapping ErrNotMounted", what, err)
	}
}

func TestRootPublishesOnTheDrive(t *testing.T) {
	mnt := drive(t)
	r := openRoot(t, mnt, archive.RequireMarker)
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	path, err := startFile(t, r).Publish()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(archive.PartitionDir(mnt, "spin30", hour14),
		archive.FileName(archive.Name{Stream: "spin30", Hour: hour14, BufferID: idA, First: 1, Last: 20}))
	if path != want {
		t.Errorf("published %s, want %s", path, want)
	}
	if m, err := archive.Verify(path); err != nil || m.BufferID != idA {
		t.Errorf("Verify = %+v, %v", m, err)
	}
	if files, problems := archive.VerifyTree(mnt); files != 1 || len(problems) > 0 {
		t.Errorf("VerifyTree = %d, %v", files, problems)
	}
	if tmp := tempFiles(t, mnt); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestRootDriveYankedMidFile: the drive is unmounted while a file is being
// written; publishing must fail, and nothing may appear on the bare mount
// point (the SD card).
func TestRootDriveYankedMidFile(t *testing.T) {
	mnt := drive(t)
	r := openRoot(t, mnt, archive.RequireMarker)
	w := startFile(t, r)
	yank(t, mnt)
	path, err := w.Publish()
	wantGone(t, "Publish after umount -l", err)
	if path != "" {
		t.Errorf("Publish returned path %q", path)
	}
	if got := contents(t, mnt); len(got) > 0 {
		t.Errorf("written to the bare mount point: %v", got)
	}
	wantGone(t, "Check after umount -l", r.Check())
	_, err = r.Create("spin31", hour14, archive.Options{})
	wantGone(t, "Create after umount -l", err)
	if got := contents(t, mnt); len(got) > 0 {
		t.Errorf("written to the bare mount point: %v", got)
	}
}

func TestRootDriveYankedBeforeCreate(t *testing.T) {
	mnt := drive(t)
	r := openRoot(t, mnt, archive.RequireMarker)
	yank(t, mnt)
	wantGone(t, "Check after umount -l", r.Check())
	_, err := r.Create("spin30", hour14, archive.Options{BufferID: idA})
	wantGone(t, "Create after umount -l", err)
	if got := contents(t, mnt); len(got) > 0 {
		t.Errorf("written to the bare mount point: %v", got)
	}
	// A new OpenRoot sees the bare folder for what it is.
	if _, err := archive.OpenRoot(mnt, archive.RequireMarker); !errors.Is(err, archive.ErrNotMounted) {
		t.Errorf("OpenRoot of the bare mount point: %v, want ErrNotMounted", err)
	}
}

// TestRootDriveReplaced: another file system mounted at the same path, even
// one holding a marker, is not the drive the Root holds.
func TestRootDriveReplaced(t *testing.T) {
	for _, require := range []string{archive.RequireMarker, archive.RequireMountpoint, archive.RequireNone} {
		t.Run(require, func(t *testing.T) {
			mnt := drive(t)
			r := openRoot(t, mnt, require)
			w := startFile(t, r)
			other := t.TempDir()
			for _, args := range [][]string{
				{"mount", "-t", "tmpfs", "lablog-test", other},
				{"mount", "--bind", other, mnt},
			} {
				if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
			}
			t.Cleanup(func() { unmountAll(other) })
			if err := os.WriteFile(filepath.Join(mnt, archive.MarkerFile), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			wantGone(t, "Check", r.Check())
			_, err := w.Publish()
			wantGone(t, "Publish", err)
			_, err = r.Create("spin31", hour14, archive.Options{})
			wantGone(t, "Create", err)
			if got := contents(t, mnt); len(got) != 1 || got[0] != archive.MarkerFile {
				t.Errorf("written to the other file system: %v", got)
			}
		})
	}
}

// The checks that need no mount: a marker taken away, a folder replaced.
func TestRootCheck(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, archive.MarkerFile)
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := openRoot(t, dir, archive.RequireMarker)
	if r.Path() != dir {
		t.Errorf("Path = %s", r.Path())
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	wantGone(t, "Check without the marker", r.Check())
	if _, err := r.Create("spin30", hour14, archive.Options{}); !errors.Is(err, archive.ErrNotMounted) {
		t.Errorf("Create without the marker: %v", err)
	}

	// The folder renamed away and a new one made in its place.
	dir = t.TempDir()
	r = openRoot(t, dir, archive.RequireNone)
	w := startFile(t, r)
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir + ".old") })
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wantGone(t, "Check of a replaced folder", r.Check())
	_, err := w.Publish()
	wantGone(t, "Publish into a replaced folder", err)
	if got := contents(t, dir); len(got) > 0 {
		t.Errorf("written to the new folder: %v", got)
	}
	if got := contents(t, dir+".old"); len(got) != 2 { // stream=, date=; the temporary file is gone
		t.Errorf("the held folder holds %v, want only the partition folders", got)
	}

	// Removed altogether.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); !errors.Is(err, archive.ErrNoTarget) {
		t.Errorf("Check of a removed folder: %v, want ErrNoTarget", err)
	}
	if _, err := archive.OpenRoot(dir, archive.RequireNone); !errors.Is(err, archive.ErrNoTarget) {
		t.Errorf("OpenRoot of a missing folder: %v, want ErrNoTarget", err)
	}
}

const yankEnv = "LABLOG_ARCHIVE_YANK_ROOT"

// TestYankHelper is the child of TestYankWhilePaused: it writes one file and
// exits 3 when Publish fails with a *TargetError.
func TestYankHelper(t *testing.T) {
	root := os.Getenv(yankEnv)
	if root == "" {
		t.Skip("helper process for TestYankWhilePaused")
	}
	r, err := archive.OpenRoot(root, archive.RequireMarker)
	if err != nil {
		t.Fatal(err)
	}
	_, err = startFile(t, r).Publish()
	var te *archive.TargetError
	if errors.As(err, &te) {
		os.Exit(3)
	}
	t.Fatalf("Publish: %v", err)
}

// TestYankWhilePaused holds a real process at the last moment before the
// rename, unmounts the drive under it, and lets it go on.
func TestYankWhilePaused(t *testing.T) {
	testkit.NeedFailpoints(t)
	mnt := drive(t)
	pauses := t.TempDir()
	cmd := selfCommand("-test.run=^TestYankHelper$")
	cmd.Env = append(os.Environ(), yankEnv+"="+mnt,
		failpoint.EnvVar+"="+archive.FailAfterWriteBeforeRename+":pause:"+pauses)
	out, err := startCmd(t, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := failpoint.WaitPaused(pauses, archive.FailAfterWriteBeforeRename, time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, out())
	}
	if tmp := tempFiles(t, mnt); len(tmp) != 1 {
		t.Fatalf("paused with temporary files %v, want one", tmp)
	}
	yank(t, mnt)
	if err := failpoint.Resume(pauses, archive.FailAfterWriteBeforeRename, time.Minute); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit 3 (Publish failed with a *TargetError)\n%s", err, out())
	}
	if got := contents(t, mnt); len(got) > 0 {
		t.Errorf("written to the bare mount point: %v", got)
	}
}

// startCmd starts cmd collecting its output, and kills it if the test ends
// first.
func startCmd(t *testing.T, cmd *exec.Cmd) (output func() string, err error) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
	})
	return func() string { b, _ := os.ReadFile(f.Name()); return string(b) }, nil
}
