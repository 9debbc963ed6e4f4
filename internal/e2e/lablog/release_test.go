package lablog

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/testing/lablogbin"
)

// failpointSymbols lists the symbols of the failpoint package in bin.
func failpointSymbols(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm %s: %v", bin, err)
	}
	var syms []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "/internal/platform/failpoint.") {
			syms = append(syms, strings.TrimSpace(l))
		}
	}
	return syms
}

// TestReleaseBuildHasNoFailpoints: built without -tags failpoint, as make
// build does, lablog holds no failpoint code and ignores LABLOG_FAILPOINT,
// even a malformed one that stops a failpoint build at start-up.
func TestReleaseBuildHasNoFailpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; not in -short")
	}
	rel := filepath.Join(t.TempDir(), "lablog")
	build := exec.Command("go", "build", "-o", rel, "./cmd/lablog")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	test := lablogbin.Path(t)

	if syms := failpointSymbols(t, test); !strings.Contains(strings.Join(syms, "\n"), "internal/platform/failpoint.parse") {
		t.Fatalf("the failpoint build shows no failpoint.parse, so this check could not see one:\n%s", strings.Join(syms, "\n"))
	}
	if syms := failpointSymbols(t, rel); len(syms) > 0 {
		t.Errorf("release build holds failpoint code:\n%s", strings.Join(syms, "\n"))
	}

	// Its bench leaves the slow-disk rows out, saying why, rather than
	// measuring a fast disk under a slow disk's name.
	out, err := exec.Command(rel, "bench", "--quick", "--only", "slowdisk").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "slow disk: left out") || strings.Contains(string(out), "| slow disk") {
		t.Errorf("release build's bench --only slowdisk: %v\n%s\nwant no slow disk rows and a note why", err, out)
	}

	for _, spec := range []string{":kill", "x:stop", "x:delay:fast"} {
		env := append(os.Environ(), failpoint.EnvVar+"="+spec)
		cmd := exec.Command(rel, "version")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "lablog ") || strings.Contains(string(out), failpoint.VersionNote) {
			t.Errorf("release build, %s=%q: %v\n%s; want it to run as if unset", failpoint.EnvVar, spec, err, out)
		}
		cmd = exec.Command(test, "version")
		cmd.Env = env
		out, err = cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), failpoint.EnvVar) {
			t.Errorf("failpoint build, %s=%q: %v\n%s; want exit 2 naming the variable", failpoint.EnvVar, spec, err, out)
		}
	}
}

// TestMakeBuildHasNoFailpointTag: the release targets of the Makefile build
// without the tag; the failpoint build is a target of its own.
func TestMakeBuildHasNoFailpointTag(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed")
	}
	run := func(target string) string {
		cmd := exec.Command(mk, "-n", "--no-print-directory", target)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "VERSION=test")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		return string(out)
	}
	for _, target := range []string{"build", "build-arm64"} {
		if out := run(target); !strings.Contains(out, "go build") || strings.Contains(out, "failpoint") {
			t.Errorf("make -n %s:\n%s\nwant a go build without the failpoint tag", target, out)
		}
	}
	if out := run("build-failpoint"); !strings.Contains(out, "-tags failpoint") {
		t.Errorf("make -n build-failpoint:\n%s\nwant a go build with -tags failpoint", out)
	}
}
