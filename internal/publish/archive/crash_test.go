package archive_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

const crashRootEnv = "LABLOG_ARCHIVE_CRASH_ROOT"

func crashEntries() []archive.Entry {
	var e []archive.Entry
	for seq := uint64(1); seq <= 10; seq++ {
		e = append(e, entry(seq, frame.Text, legacy))
	}
	return e
}

// TestCrashHelper is the child process of TestCrashWindows: it writes one
// file and is SIGKILLed at the armed failpoint.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv(crashRootEnv)
	if root == "" {
		t.Skip("helper process for TestCrashWindows")
	}
	write(t, root, "spin30", hour14, archive.Options{RowGroupRows: 4}, crashEntries()...)
}

// TestCrashWindows kills a writer at each failpoint, like a power cut, and
// checks what is left is what recovery expects: before the rename only a
// temporary file (CleanTemp removes it); after it, a complete file that
// verifies and that a second Publish refuses to overwrite.
func TestCrashWindows(t *testing.T) {
	testkit.NeedFailpoints(t)
	cases := []struct {
		point     string
		published bool
	}{
		{archive.FailMidWrite, false},
		{archive.FailAfterWriteBeforeRename, false},
		{archive.FailAfterRenameBeforeSync, true},
	}
	for _, c := range cases {
		t.Run(c.point, func(t *testing.T) {
			root := t.TempDir()
			cmd := selfCommand("-test.run=^TestCrashHelper$")
			cmd.Env = append(os.Environ(), crashRootEnv+"="+root, failpoint.EnvVar+"="+c.point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("helper was not killed at %s: %v\n%s", c.point, err, out)
			}
			final := filepath.Join(archive.PartitionDir(root, "spin30", hour14), archive.FileName(archive.Name{Stream: "spin30", Hour: hour14, First: 1, Last: 10}))
			_, statErr := os.Stat(final)
			if published := statErr == nil; published != c.published {
				t.Fatalf("file published = %v, want %v", published, c.published)
			}
			temps := len(tempFiles(t, root))
			if c.published {
				if temps != 0 {
					t.Errorf("%d temporary files after the rename", temps)
				}
				if _, err := archive.Verify(final); err != nil {
					t.Errorf("file published before the crash does not verify: %v", err)
				}
				w, err := archive.Create(root, "spin30", hour14, archive.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range crashEntries() {
					w.Add(e)
				}
				if _, err := w.Publish(); !errors.Is(err, archive.ErrExists) {
					t.Errorf("republish after the crash: %v, want ErrExists", err)
				}
			} else {
				if removed, err := archive.CleanTemp(root); err != nil || removed != 1 {
					t.Errorf("CleanTemp = %d, %v; want 1 leftover removed", removed, err)
				}
				write(t, root, "spin30", hour14, archive.Options{}, crashEntries()...) // the retry
			}
			if _, problems := archive.VerifyTree(root); len(problems) > 0 {
				t.Errorf("after recovery: %v", problems)
			}
		})
	}
}

// selfCommand re-runs this test binary. Under qemu-user without binfmt the
// kernel cannot exec a foreign binary, so `make test-arm64` names the
// emulator in LABLOG_TEST_EXEC.
func selfCommand(args ...string) *exec.Cmd {
	if emu := os.Getenv("LABLOG_TEST_EXEC"); emu != "" {
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
