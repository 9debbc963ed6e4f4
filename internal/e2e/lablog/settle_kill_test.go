package lablog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/lablogbin"
)

// A stream-hour larger than one settle step is removed from the buffer in
// several transactions. Killed between two of them, `lablog compact` has
// published the hour's file and removed part of its records; the next run
// must remove the rest, not archive them again as a second file.
func TestCompactKilledBetweenSettleStepsArchivesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a buffer of 400k messages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfgPath, root, records, stored := labBuffer(t, ctx, 400_000)
	if stored < 8<<20 {
		t.Fatalf("the buffer holds %d bytes: too few for a settle in several steps", stored)
	}
	bin := lablogbin.Path(t)

	cmd := exec.CommandContext(ctx, bin, "compact", "--config", cfgPath, "--open-hours")
	cmd.Env = append(os.Environ(), failpoint.EnvVar+"="+buffer.FailBetweenSettleSteps)
	out, err := cmd.CombinedOutput()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("compact was not killed between settle steps: %v\n%s", err, out)
	}

	out, err = exec.CommandContext(ctx, bin, "compact", "--config", cfgPath, "--open-hours").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "published 0 files") {
		t.Fatalf("compact after the kill: %v; want nothing left to publish\n%s", err, out)
	}
	db, err := buffer.OpenReadOnly(filepath.Join(filepath.Dir(cfgPath), "buffer.db"), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := db.Groups()
	_ = db.Close()
	if err != nil || len(groups) != 0 {
		t.Errorf("buffer after the second compact: %v, %v; want it empty (every record archived)", groups, err)
	}
	out, err = exec.CommandContext(ctx, bin, "verify", root).CombinedOutput()
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	glob := strings.ReplaceAll(filepath.Join(root, "**", "*.parquet"), "'", "''")
	rows := duckdbtest.Query(t, fmt.Sprintf(
		"SELECT count(DISTINCT filename) AS files, count(DISTINCT seq) AS seqs, min(seq) AS first, max(seq) AS last "+
			"FROM read_parquet('%s', filename=true)", glob))
	got := rows[0]
	want := map[string]any{"files": json.Number("1"), "seqs": json.Number(fmt.Sprint(records)),
		"first": json.Number("1"), "last": json.Number(fmt.Sprint(records))}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("archive: %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
