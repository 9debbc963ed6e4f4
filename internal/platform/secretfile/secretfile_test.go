package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("# who\n\n  a:b  \n#c:d\nx: y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, err := ReadLines(p)
	if err != nil || len(lines) != 2 || lines[0] != (Line{3, "a:b"}) || lines[1] != (Line{5, "x: y"}) {
		t.Fatalf("lines %v, %v", lines, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	var me *ModeError
	if _, err := ReadLines(p); !errors.As(err, &me) || !strings.Contains(err.Error(), "chmod 600 "+p) {
		t.Fatalf("a world-readable file: %v", err)
	}
	if _, err := ReadLines(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
}
