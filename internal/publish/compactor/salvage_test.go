package compactor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/testing/testkit"
)

// A buffer quarantined beside the compactor's is salvaged by its runs: not
// while the drive is missing (it stays pending), then once, with its
// unreadable records reported, and never again.
func TestRunsSalvageQuarantinedBuffers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	counts := map[string]int{"spin30": 300, "spin31": 200, "tiny": 3}
	id, _ := testkit.FillBuffer(t, path, t0.Truncate(time.Hour), counts)
	testkit.BreakInlineBucket(t, path, "tiny")
	db := testkit.OpenBuffer(t, path, buffer.Options{})
	if db.Quarantined() == "" {
		t.Fatal("not quarantined")
	}
	root := filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var faults []int64
	c := New(db, Options{Root: root, Require: archive.RequireMarker, Now: func() time.Time { return t0 },
		Fault: func(kind fault.Kind, _ string, n int64) {
			if kind == fault.RecordsSetAside {
				faults = append(faults, n)
			}
		}})

	if res := c.RunOnce(context.Background()); res.Err == nil || res.Salvaged != 0 || buffer.Salvaged(db.Quarantined()) {
		t.Fatalf("no drive: %+v, salvaged marked %v; want an error and the file still pending", res, buffer.Salvaged(db.Quarantined()))
	}
	if err := os.WriteFile(filepath.Join(root, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := c.RunOnce(context.Background())
	if res.Err != nil || res.Salvaged != 500 || res.Unreadable != 3 || len(faults) != 1 || faults[0] != 3 {
		t.Fatalf("with the drive: %+v, faults %v; want 500 salvaged, 3 unreadable reported", res, faults)
	}
	if res := c.RunOnce(context.Background()); res.Err != nil || res.Salvaged != 0 || res.Files != 0 || len(faults) != 1 {
		t.Fatalf("the next run: %+v, faults %v; want nothing salvaged again", res, faults)
	}
	n := 0
	for rid, recs := range testkit.ArchivedFrames(t, root) {
		if rid.BufferID == id {
			n += len(recs)
		}
	}
	if n != 500 {
		t.Errorf("%d records of the quarantined buffer in the archive, want 500", n)
	}
}
