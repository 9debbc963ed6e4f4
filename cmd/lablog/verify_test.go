package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyCommand(t *testing.T) {
	root := t.TempDir()
	writeArchiveFile(t, root, "spin30", 1, 10)
	writeArchiveFile(t, root, "spin31", 1, 10)
	if out, err := runCmd(t, "verify", root); err != nil || !strings.Contains(out, "ok: 2 files verified") {
		t.Fatalf("good tree: %v %q", err, out)
	}
	dup := writeArchiveFile(t, root, "spin30", 5, 3) // overlaps seqs 5..7
	bad := writeArchiveFile(t, root, "spin32", 1, 10)
	data, _ := os.ReadFile(bad)
	_ = os.WriteFile(bad, data[:len(data)/2], 0o644)
	out, err := runCmd(t, "verify", root)
	if err == nil {
		t.Fatalf("verify passed a damaged tree:\n%s", out)
	}
	for _, want := range []string{"FAIL " + bad, filepath.Base(dup)} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %q:\n%s", want, out)
		}
	}
	if _, err := runCmd(t, "verify", filepath.Join(root, "nope")); err == nil {
		t.Error("verify of a missing folder passed")
	}
	// An empty folder (an unmounted drive's mount point) is not a pass.
	empty := t.TempDir()
	if out, err := runCmd(t, "verify", empty); err == nil || !strings.Contains(err.Error(), "no Parquet files and no .lablog-archive marker") {
		t.Errorf("verify of an empty folder: %v %q", err, out)
	}
}
