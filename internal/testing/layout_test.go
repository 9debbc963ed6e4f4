// Package layout checks the floor that holds it: what lives under
// internal/testing (helpers) and internal/e2e (whole-system suites) is for
// tests only and never part of the lablog binary.
package layout

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/testing/lablogbin"
)

const mod = "github.com/practable/lablog"

// goList runs go list in the module's root and returns one line per package.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	root, err := lablogbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

// Nothing under internal/testing or internal/e2e is compiled into the
// production binary (built as make build does: no tags).
func TestTestOnlyPackagesStayOutOfTheBinary(t *testing.T) {
	testOnly := goList(t, mod+"/internal/testing/...", mod+"/internal/e2e/...")
	// The check below means something only while these floors hold packages.
	for _, want := range []string{mod + "/internal/testing/testkit", mod + "/internal/e2e/lablog"} {
		if !slices.Contains(testOnly, want) {
			t.Fatalf("go list finds no %s among %v", want, testOnly)
		}
	}
	deps := goList(t, "-deps", "-f", "{{.ImportPath}}", mod+"/cmd/lablog")
	if !slices.Contains(deps, mod+"/internal/record/buffer") {
		t.Fatalf("the binary's deps lack internal/record/buffer: go list did not list them: %v", deps)
	}
	for _, p := range deps {
		if slices.Contains(testOnly, p) {
			t.Errorf("the lablog binary imports %s, a test-only package: move what it needs out of internal/testing or internal/e2e", p)
		}
	}
}
