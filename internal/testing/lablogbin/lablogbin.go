// Package lablogbin builds the real lablog binary for the suites that run
// it as a process: the crash and durability tests of cmd/lablog and
// internal/e2e/lablog, and the relay conformance tests. One builder, so
// every suite tests the same build of ./cmd/lablog, wherever the suite's
// package sits.
package lablogbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ModuleRoot is the folder of lablog's go.mod, asked of `go env GOMOD`, so
// a test finds the repository from any package folder.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}

// Build builds ./cmd/lablog into dir as CGO_ENABLED=0 (as make does), with
// the failpoints compiled in when failpoints is set, and returns the
// binary's path.
func Build(dir string, failpoints bool) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "lablog")
	args := []string{"build", "-o", bin}
	if failpoints {
		args = append(args, "-tags", "failpoint")
	}
	cmd := exec.Command("go", append(args, "./cmd/lablog")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/lablog: %v\n%s", err, out)
	}
	return bin, nil
}

var (
	once     sync.Once
	binPath  string
	buildErr error
)

// Path is the binary with its failpoints compiled in (the crash tests arm
// them), built once per test process into a temporary folder.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, err := os.MkdirTemp("", "lablog-bin-")
		if err != nil {
			buildErr = fmt.Errorf("temp dir for lablog: %w", err)
			return
		}
		binPath, buildErr = Build(dir, true)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Memory reads VmHWM (the peak) and VmRSS of the process pid, in MiB.
func Memory(t testing.TB, pid int) (hwm, rss float64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmHWM:":
			hwm = kb / 1024
		case "VmRSS:":
			rss = kb / 1024
		}
	}
	return hwm, rss
}
