package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// binfmtDir is where the kernel's binfmt_misc is mounted.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// binfmtProblem says what keeps the kernel from running arm64 programs
// through qemu-user, given a binfmt_misc folder, or "" when nothing does.
func binfmtProblem(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "status")); err != nil {
		return "binfmt_misc is not mounted at " + dir
	}
	data, err := os.ReadFile(filepath.Join(dir, "qemu-aarch64"))
	if err != nil {
		return "qemu-aarch64 is not registered with binfmt_misc"
	}
	if state, _, _ := strings.Cut(string(data), "\n"); state != "enabled" {
		return "binfmt_misc's qemu-aarch64 entry is " + state
	}
	return ""
}

// needArm64Binfmt stops a test that runs arm64 programs (pi-gen's
// dependencies_check and arch-test) early, with the fix, rather than deep
// inside pi-gen.
func needArm64Binfmt(t *testing.T) {
	t.Helper()
	if p := binfmtProblem(binfmtDir); p != "" {
		t.Fatalf("%s, so arm64 programs cannot run here: run make deps as root (it runs .ci/binfmt.sh)", p)
	}
}

func TestBinfmtProblem(t *testing.T) {
	dir := t.TempDir()
	if got := binfmtProblem(dir); !strings.Contains(got, "not mounted") {
		t.Errorf("no status file: %q", got)
	}
	writeFile(t, filepath.Join(dir, "status"), "enabled\n", 0o644)
	if got := binfmtProblem(dir); !strings.Contains(got, "not registered") {
		t.Errorf("no qemu-aarch64 entry: %q", got)
	}
	entry := filepath.Join(dir, "qemu-aarch64")
	writeFile(t, entry, "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n", 0o644)
	if got := binfmtProblem(dir); got != "binfmt_misc's qemu-aarch64 entry is disabled" {
		t.Errorf("disabled entry: %q", got)
	}
	writeFile(t, entry, "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n", 0o644)
	if got := binfmtProblem(dir); got != "" {
		t.Errorf("enabled entry: %q", got)
	}
}
