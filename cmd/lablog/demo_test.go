package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/publish/archive"
)

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	out, err := runCmd(t, "demo", "--dir", dir, "--duration", "3s", "--streams", "4", "--rate", "20", "--listen", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	// One file per device and per kind of hardware posting statements
	// (addlog-spinner, addlog-pendulum) at the end, plus one for each that
	// had records when a scheduled (10 s aligned) compaction fell inside
	// the run: 6 to 12 files.
	m := regexp.MustCompile(`all (\d+) files verified`).FindStringSubmatch(out)
	if n, err := strconv.Atoi(firstGroup(m)); err != nil || n < 6 || n > 12 {
		t.Errorf("demo did not verify 6 to 12 files:\n%s", out)
	}
	// Today's UIs posted statements, and each was acknowledged.
	st := regexp.MustCompile(`statements: (\d+) posted, (\d+) acknowledged`).FindStringSubmatch(out)
	if len(st) != 3 || st[2] == "0" {
		t.Errorf("no statement acknowledged:\n%s", out)
	}
	// The banner names every device: spin31 and pend00 too.
	for _, want := range []string{"recording 4 simulated devices (spin30-32,pend00)", "4/4 connected", "archives the open hour every 10s", "received_at ", " statement ", "/addLog (stream addlog-spinner, addlog-pendulum)",
		"lablog head -n 20 FILE", "read_parquet('" + dir + "/archive/**/*.parquet', hive_partitioning = true, union_by_name = true)"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if _, problems := archive.VerifyTree(filepath.Join(dir, "archive")); len(problems) > 0 {
		t.Errorf("demo archive: %v", problems)
	}
}

// firstGroup is a regexp match's first group, or "" for no match.
func firstGroup(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}
