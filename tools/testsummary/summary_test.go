package testsummary

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real go test -json run of a small module: passes, skips for two reasons
// (one in a subtest), a failure; the summary keeps go test's lines and
// counts the skips.
func TestSummarizeRealRun(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.26\n",
		"a/a_test.go": `package a
import "testing"
func TestPass(t *testing.T) {}
func TestNoServer(t *testing.T) { t.Skip("no server: set SERVER_BIN") }
func TestNoServerToo(t *testing.T) { t.Skipf("no server: set %s", "SERVER_BIN") }
func TestSub(t *testing.T) { t.Run("x", func(t *testing.T) { t.Skip("not root") }) }
`,
		"b/b_test.go": `package b
import "testing"
func TestBroken(t *testing.T) { t.Log("context line"); t.Fatal("it broke") }
func TestFine(t *testing.T) {}
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	js, _ := cmd.Output() // exits 1: b fails
	var out bytes.Buffer
	res, err := Summarize(bytes.NewReader(js), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !res.Failed {
		t.Errorf("the failure was not noticed:\n%s", got)
	}
	for _, want := range []string{
		"ok  \texample.com/m/a\t", "--- FAIL: TestBroken", "context line", "it broke", "FAIL\texample.com/m/b\t",
		"skipped: 3 tests\n    2  no server: set SERVER_BIN\n    1  not root\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"=== RUN", "--- PASS", "--- SKIP", "\nPASS\n"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("summary has %q, which plain go test does not print:\n%s", unwanted, got)
		}
	}
	if strings.Index(got, "skipped:") < strings.LastIndex(got, "example.com/m/") {
		t.Errorf("the skip line is not last:\n%s", got)
	}
}

func TestLineWithoutSkips(t *testing.T) {
	res, err := Summarize(strings.NewReader(`{"Action":"pass","Package":"p","Test":"TestX"}`+"\n"), &bytes.Buffer{})
	if err != nil || res.Failed || res.Line() != "skipped: none" {
		t.Errorf("%+v %v %q", res, err, res.Line())
	}
}
