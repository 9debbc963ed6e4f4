package atomicfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/practable/lablog/internal/platform/atomicfile"
	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/testing/testkit"
)

// content is size bytes of one repeated letter, so any mix of two contents
// or a cut one shows.
func content(letter byte, size int) []byte { return bytes.Repeat([]byte{letter}, size) }

var (
	oldContent = content('o', 100_000)
	newContent = content('n', 300_000) // several writes: a torn file would be shorter
)

const childEnv = "LABLOG_ATOMICFILE_CHILD"

// TestChild is the process TestKillAtEachStep kills: it replaces the file
// named by childEnv with newContent, in pieces through the streaming writer.
func TestChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper process for TestKillAtEachStep")
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	for rest := newContent; len(rest) > 0; rest = rest[min(len(rest), 64<<10):] {
		if _, err := f.Write(rest[:min(len(rest), 64<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
}

// listDir names what a reader of the folder would see.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func describe(b []byte) string {
	switch {
	case bytes.Equal(b, oldContent):
		return "the old content"
	case bytes.Equal(b, newContent):
		return "the new content"
	}
	return fmt.Sprintf("a torn file of %d bytes", len(b))
}

// TestKillAtEachStep kills a writer (SIGKILL, in a child process) at each
// step of a replacement: the path then holds the complete old content
// before the rename and the complete new one after it, never a torn or an
// empty file; a temporary file left behind is hidden (.name.*.tmp) and the
// next write of the path removes it.
func TestKillAtEachStep(t *testing.T) {
	testkit.NeedFailpoints(t)
	for _, c := range []struct {
		point string
		want  []byte
	}{
		{atomicfile.FailAfterWrite, oldContent},
		{atomicfile.FailAfterFileSync, oldContent},
		{atomicfile.FailAfterRename, newContent},
		{atomicfile.FailBeforeDirSync, newContent},
	} {
		t.Run(c.point, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.json")
			if err := atomicfile.WriteFile(path, oldContent, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := selfCommand("-test.run=^TestChild$")
			cmd.Env = append(os.Environ(), childEnv+"="+path, failpoint.EnvVar+"="+c.point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child not killed at %s: %v\n%s", c.point, err, out)
			}
			if got := mustRead(t, path); !bytes.Equal(got, c.want) {
				t.Fatalf("after a kill at %s the file holds %d bytes (%s), want %s", c.point, len(got), describe(got), describe(c.want))
			}
			temps := 0
			for _, name := range listDir(t, dir) {
				switch {
				case atomicfile.IsTemp(name):
					temps++
				case name != "data.json":
					t.Errorf("after a kill at %s: %q in the folder, neither the file nor a hidden temporary file", c.point, name)
				}
			}
			// Before the rename the crashed writer's temporary file stays
			// (hidden) until the next write; after it there is none.
			if wantTemps := map[bool]int{true: 1, false: 0}[bytes.Equal(c.want, oldContent)]; temps != wantTemps {
				t.Errorf("after a kill at %s: %d temporary files, want %d", c.point, temps, wantTemps)
			}
			// The next write cleans up after the crashed one.
			if err := atomicfile.WriteFile(path, oldContent, 0o644); err != nil {
				t.Fatal(err)
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Errorf("after the next write the folder holds %q, want data.json alone", names)
			}
		})
	}
}

// TestErrorAtEachStep fails each step in turn: before the rename the path
// keeps its old content; after it, the new content is in place though the
// write reports the error; no temporary file is ever left.
func TestErrorAtEachStep(t *testing.T) {
	testkit.NeedFailpoints(t)
	for _, c := range []struct {
		point string
		want  []byte
	}{
		{atomicfile.FailAfterWrite, oldContent},
		{atomicfile.FailAfterFileSync, oldContent},
		{atomicfile.FailAfterRename, newContent},
		{atomicfile.FailBeforeDirSync, newContent},
	} {
		t.Run(c.point, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.json")
			if err := atomicfile.WriteFile(path, oldContent, 0o644); err != nil {
				t.Fatal(err)
			}
			disarm, err := failpoint.Arm(c.point + ":error")
			if err != nil {
				t.Fatal(err)
			}
			err = atomicfile.WriteFile(path, newContent, 0o644)
			disarm()
			if !errors.Is(err, failpoint.ErrInjected) {
				t.Errorf("WriteFile = %v, want the injected error", err)
			}
			if got := mustRead(t, path); !bytes.Equal(got, c.want) {
				t.Errorf("after an error at %s the file holds %s, want %s", c.point, describe(got), describe(c.want))
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Errorf("after an error at %s the folder holds %q, want data.json alone", c.point, names)
			}
		})
	}
}

// TestModeIsExact: the mode given is the mode the file gets, whatever the
// umask and whatever the mode of the file it replaces.
func TestModeIsExact(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "f")
	for _, perm := range []fs.FileMode{0o644, 0o600, 0o640} {
		if err := atomicfile.WriteFile(path, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), perm)
		}
	}
}

// TestAbort: an aborted write leaves the path and the folder as they were;
// Abort after Commit and a second Commit change nothing.
func TestAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := atomicfile.WriteFile(path, oldContent, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(newContent); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if got := mustRead(t, path); !bytes.Equal(got, oldContent) {
		t.Errorf("after Abort the file holds %s", describe(got))
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("after Abort the folder holds %q", names)
	}

	f, err = atomicfile.Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(newContent); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if got := mustRead(t, path); !bytes.Equal(got, newContent) {
		t.Errorf("after Commit then Abort the file holds %s", describe(got))
	}
}

// TestLiveTempFileIsKept: a writer still writing is not taken for a crashed
// one by a second writer of the same path; both publish, the last wins.
func TestLiveTempFileIsKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	slow, err := atomicfile.Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Abort()
	if _, err := slow.Write(newContent); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(path, oldContent, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := slow.Commit(); err != nil {
		t.Fatalf("the first writer's Commit after a second writer: %v", err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, newContent) {
		t.Errorf("the file holds %s, want the last committed (new) content", describe(got))
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("the folder holds %q", names)
	}
}

// TestMissingFolder: a write into a folder that is not there fails, naming
// the path, and creates nothing.
func TestMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "f")
	err := atomicfile.WriteFile(path, []byte("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Errorf("WriteFile into a missing folder = %v, want ErrNotExist naming %s", err, path)
	}
}

// selfCommand re-runs this test binary; `make test-arm64` names an emulator
// in LABLOG_TEST_EXEC.
func selfCommand(args ...string) *exec.Cmd {
	if emu := os.Getenv("LABLOG_TEST_EXEC"); emu != "" {
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
