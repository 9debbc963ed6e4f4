package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/archive"
)

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	out, err := runCmd(t, "demo", "--dir", dir, "--duration", "3s", "--streams", "4", "--rate", "20", "--listen", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	// One file per device at the end, plus one per device for each scheduled
	// (10 s aligned) compaction that fell inside the run.
	if m := regexp.MustCompile(`all (\d+) files verified`).FindStringSubmatch(out); m == nil || m[1] != "4" && m[1] != "8" {
		t.Errorf("demo did not verify 4 or 8 files:\n%s", out)
	}
	for _, want := range []string{"4/4 connected", "archives the open hour every 10s", "received_at ", " message ",
		"lablog head -n 20 FILE", "read_parquet('" + dir + "/archive/**/*.parquet', hive_partitioning = true, union_by_name = true)"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if _, problems := archive.VerifyTree(filepath.Join(dir, "archive")); len(problems) > 0 {
		t.Errorf("demo archive: %v", problems)
	}
}
