package buffer

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Two quarantines in the same second keep both files: a rename onto the
// first name would replace the first damaged buffer, records and all.
func TestQuarantineNamesNeverRepeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for range 3 {
		name := quarantineName(path, now)
		if seen[name] {
			t.Fatalf("%s named twice", name)
		}
		seen[name] = true
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := QuarantinedFiles(path)
	if err != nil || len(files) != 3 {
		t.Fatalf("quarantined files %v (%v), want 3", files, err)
	}
}
