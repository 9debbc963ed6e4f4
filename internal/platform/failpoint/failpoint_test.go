package failpoint_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/testing/testkit"
)

const childLogEnv = "LABLOG_FAILPOINT_TEST_LOG"

// TestChild is the process the other tests arm: it logs before and after
// each of two hits of "point" (and one of an unarmed point) to a file.
func TestChild(t *testing.T) {
	path := os.Getenv(childLogEnv)
	if path == "" {
		t.Skip("helper process for the failpoint tests")
	}
	logf := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s + "\n")
		f.Close()
	}
	failpoint.Hit("elsewhere")
	for _, i := range []string{"1", "2"} {
		logf("before " + i)
		failpoint.Hit("point")
		logf("after " + i)
	}
}

func child(t *testing.T, spec string) (*exec.Cmd, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "log")
	cmd := selfCommand("-test.run=^TestChild$")
	cmd.Env = append(os.Environ(), childLogEnv+"="+log, failpoint.EnvVar+"="+spec)
	return cmd, log
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "; ")
}

func TestKill(t *testing.T) {
	testkit.NeedFailpoints(t)
	for _, spec := range []string{"point", "point:kill", "elsewhere:error,point:kill"} {
		t.Run(spec, func(t *testing.T) {
			cmd, log := child(t, spec)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child not killed: %v\n%s", err, out)
			}
			if got := readLog(t, log); got != "before 1" {
				t.Errorf("log %q, want the child killed at its first hit", got)
			}
		})
	}
}

// TestReleaseBuildIgnoresTheEnvironment: without -tags failpoint, an armed
// point, even a malformed setting, changes nothing.
func TestReleaseBuildIgnoresTheEnvironment(t *testing.T) {
	if failpoint.Enabled {
		t.Skip("a release-build test: go test without -tags failpoint (cmd/lablog checks the release binary in every run)")
	}
	for _, spec := range []string{"point", "point:error", ":kill", "point:stop"} {
		cmd, log := child(t, spec)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%q: child: %v\n%s", spec, err, out)
		}
		if got := readLog(t, log); got != "before 1; after 1; before 2; after 2" {
			t.Errorf("%q: log %q, want the child run through", spec, got)
		}
	}
	if _, err := failpoint.Arm("point:error"); err == nil {
		t.Error("Arm worked in a release build")
	}
}

// TestErrorAndDelay arms points in this process: an error point fails every
// hit with ErrInjected and the given text; a delay point holds each hit.
func TestErrorAndDelay(t *testing.T) {
	testkit.NeedFailpoints(t)
	disarm, err := failpoint.Arm("e:error:disk on fire,d:delay:30ms")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := failpoint.Hit("e")
		if !errors.Is(err, failpoint.ErrInjected) || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("Hit(e) = %v, want ErrInjected with the text", err)
		}
	}
	start := time.Now()
	if err := failpoint.Hit("d"); err != nil {
		t.Errorf("Hit(d) = %v", err)
	}
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("delayed hit took %v, want at least 30ms", took)
	}
	if err := failpoint.Hit("other"); err != nil {
		t.Errorf("Hit(other) = %v", err)
	}
	disarm()
	if err := failpoint.Hit("e"); err != nil {
		t.Errorf("after disarm, Hit(e) = %v", err)
	}
}

func TestUnarmedPointsAreNoOps(t *testing.T) {
	testkit.NeedFailpoints(t)
	cmd, log := child(t, "other-point")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if got := readLog(t, log); got != "before 1; after 1; before 2; after 2" {
		t.Errorf("log %q", got)
	}
}

// TestPause holds the child at each hit in turn: while it is paused nothing
// after the point runs, and it goes on exactly when resumed.
func TestPause(t *testing.T) {
	testkit.NeedFailpoints(t)
	dir := t.TempDir()
	cmd, log := child(t, "point:pause:"+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	const timeout = 30 * time.Second
	for i, want := range []string{"before 1", "before 1; after 1; before 2"} {
		n, err := failpoint.WaitPaused(dir, "point", timeout)
		if err != nil || n != i+1 {
			t.Fatalf("WaitPaused = %d, %v; want pause %d\n%s", n, err, i+1, out.String())
		}
		if got := readLog(t, log); got != want {
			t.Errorf("paused at hit %d with log %q, want %q", i+1, got, want)
		}
		select {
		case err := <-done:
			t.Fatalf("child exited while paused: %v\n%s", err, out.String())
		default:
		}
		if err := failpoint.Resume(dir, "point", timeout); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if got := readLog(t, log); got != "before 1; after 1; before 2; after 2" {
		t.Errorf("log %q", got)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("pause files left behind: %v", left)
	}
}

func TestBadSpecExits(t *testing.T) {
	testkit.NeedFailpoints(t)
	for _, spec := range []string{"point:pause", "point:pause:", "point:stop", ":kill", "point:kill:x",
		"point:delay", "point:delay:fast", "point:delay:-1ms", "point:delay:10ms+70ms", "point:delay:10ms+70ms@101",
		"point:kill,point:error", "point,"} {
		cmd, log := child(t, spec)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), failpoint.EnvVar) {
			t.Errorf("%q: %v\n%s; want exit 2 naming %s", spec, err, out, failpoint.EnvVar)
		}
		if got := readLog(t, log); got != "" {
			t.Errorf("%q: child ran on: %q", spec, got)
		}
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
