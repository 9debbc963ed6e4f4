package lablog

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/testing/lablogbin"
)

// repoRoot is the repository: the folder of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := lablogbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// make deps, not as root and with packages missing, prints the exact
// apt-get command and fails rather than going on half-equipped.
func TestMakeDepsPrintsTheCommandWhenNotRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv missing")
	}
	// A PATH with bash and id only: every tool is missing. Not t.TempDir:
	// its parent is private to root.
	bin, err := os.MkdirTemp("", "lablog-deps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	for _, tool := range []string{"bash", "id"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skip(tool + " missing")
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		"env", "-i", "PATH="+bin, filepath.Join(bin, "bash"), filepath.Join(repoRoot(t), ".ci/deps.sh"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("deps succeeded with every tool missing:\n%s", out)
	}
	if !regexp.MustCompile(`sudo apt-get install -y --no-install-recommends nodejs npm qemu-user-static .*shellcheck`).Match(out) {
		t.Errorf("output lacks the apt-get command:\n%s", out)
	}
}

// Each phase of make test says when it starts, and how long it took.
func TestPhaseLines(t *testing.T) {
	phase := filepath.Join(repoRoot(t), ".ci/phase.sh")
	out, err := exec.Command(phase, "unit tests", "true").CombinedOutput()
	if err != nil || !regexp.MustCompile(`^==> unit tests \.\.\.\n==> unit tests: ok in 0m0\ds\n$`).Match(out) {
		t.Errorf("ok phase: %v %q", err, out)
	}
	out, err = exec.Command(phase, "boot 1", "sh", "-c", "exit 3").CombinedOutput()
	var exit *exec.ExitError
	if !regexp.MustCompile(`==> boot 1: FAILED \(exit 3\) after 0m0\ds\n$`).Match(out) || !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("failed phase: %v %q", err, out)
	}
}

// make demo says it is building before the (possibly long) compile, then
// runs the binary it built.
func TestMakeDemoBuildsVisibly(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make missing")
	}
	cmd := exec.Command("make", "-n", "demo")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n demo: %v\n%s", err, out)
	}
	s := string(out)
	echo, build, run := strings.Index(s, "building lablog"), strings.Index(s, "build "), strings.Index(s, "dist/lablog demo")
	if echo < 0 || build < echo || run < build || strings.Contains(s, "go run") {
		t.Errorf("make demo: want the message, the build, then dist/lablog demo:\n%s", s)
	}
}

// sudo's secure_path has no Go: make finds it where Go's tarball puts it
// (it failed with "go: No such file or directory").
func TestMakeFindsGoUnderSudo(t *testing.T) {
	if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
		t.Skip("Go is not in /usr/local/go")
	}
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make missing")
	}
	cmd := exec.Command(mk, "--no-print-directory", "--eval", "where-go: ; @command -v $(GO)", "where-go")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "/usr/local/go/bin/go" {
		t.Errorf("make with sudo's PATH: %v %q, want /usr/local/go/bin/go", err, out)
	}
}
