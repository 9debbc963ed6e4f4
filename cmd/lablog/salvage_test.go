package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

var salvageHour = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

// checkArchivedOnce fails unless every record of want but those of lost
// streams is in the archive under root exactly once, with its bytes, and
// nothing else of want's buffer is.
func checkArchivedOnce(t *testing.T, root string, want map[testkit.RecordID]frame.Record, lost string) {
	t.Helper()
	got := testkit.ArchivedFrames(t, root)
	n := 0
	for id, w := range want {
		recs := got[id]
		if id.Stream == lost {
			if len(recs) > 0 {
				t.Fatalf("%v archived, but its bucket was damaged", id)
			}
			continue
		}
		if len(recs) != 1 || recs[0].Kind != w.Kind || !bytes.Equal(recs[0].Data, w.Data) {
			t.Fatalf("%v archived %d times, want once as %q", id, len(recs), w.Data)
		}
		n++
	}
	t.Logf("%d records archived once each", n)
}

// archivedOf counts the records of buffer id under root.
func archivedOf(t *testing.T, root, id string) int {
	n := 0
	for rid := range testkit.ArchivedFrames(t, root) {
		if rid.BufferID == id {
			n++
		}
	}
	return n
}

// A daemon that starts on a damaged buffer quarantines it and, with nobody
// doing anything, archives every record that can be read from it, once.
func TestDaemonSalvagesQuarantinedBuffer(t *testing.T) {
	dir := t.TempDir()
	counts := map[string]int{"spin30": 600, "spin31": 400, "tiny": 3}
	id, want := testkit.FillBuffer(t, filepath.Join(dir, "buffer.db"), salvageHour, counts)
	testkit.BreakInlineBucket(t, filepath.Join(dir, "buffer.db"), "tiny")

	d := runInProcessIn(t, dir, []string{"spin30"}, "", "")
	intact := counts["spin30"] + counts["spin31"]
	if !testkit.Poll(20*time.Second, func() bool { return archivedOf(t, d.archive, id) >= intact }) {
		t.Fatalf("%d of the quarantined buffer's %d intact records archived after 20 s\n%s", archivedOf(t, d.archive, id), intact, d.logs)
	}
	checkArchivedOnce(t, d.archive, want, "tiny")
	testkit.Eventually(t, 10*time.Second, "the salvage report in the log", func() bool {
		return strings.Contains(d.logs.String(), "SALVAGED A QUARANTINED BUFFER, BUT NOT ALL OF IT") &&
			strings.Contains(d.logs.String(), "unreadable=3 ")
	})
	if f := faultOf(d.status(t), fault.RecordsSetAside); f == nil || f.Count != 3 || !strings.Contains(f.Detail, "3 unreadable") {
		t.Errorf("status fault %+v, want the 3 unreadable records", f)
	}
}

// salvageBinary runs the real lablog salvage and returns its output and
// exit status.
func salvageBinary(t *testing.T, cfgPath, file string) (string, int) {
	t.Helper()
	out, err := exec.Command(lablogBinary(t), "salvage", "--config", cfgPath, file).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("lablog salvage: %v\n%s", err, out)
	return "", 0
}

// quarantine opens the buffer at path as lablog run does, which sets the
// damaged file aside, and returns the quarantined file.
func quarantine(t *testing.T, path string) string {
	t.Helper()
	db := testkit.OpenBuffer(t, path, buffer.Options{})
	if db.Quarantined() == "" {
		t.Fatal("the damaged buffer was not quarantined")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return db.Quarantined()
}

// lablog salvage FILE archives what can be read, says what cannot, exits 3
// when records were unreadable and 0 when none were; a second run adds
// nothing.
func TestSalvageCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; not in -short")
	}
	cfgPath, bufPath := daemonConfig(t, "ws://127.0.0.1:1")
	root := filepath.Join(filepath.Dir(bufPath), "archive")
	counts := map[string]int{"spin30": 500, "spin31": 300, "tiny": 3}

	id, want := testkit.FillBuffer(t, bufPath, salvageHour, counts)
	testkit.BreakInlineBucket(t, bufPath, "tiny")
	q := quarantine(t, bufPath)
	out, code := salvageBinary(t, cfgPath, q)
	if code != 3 || !strings.Contains(out, "800 records archived") || !strings.Contains(out, "3 records unreadable") ||
		!strings.Contains(out, `not read: bucket "blocks"/"tiny"`) {
		t.Fatalf("exit %d, want 3:\n%s", code, out)
	}
	checkArchivedOnce(t, root, want, "tiny")
	out, code = salvageBinary(t, cfgPath, q)
	if code != 3 || !strings.Contains(out, "0 records archived in 0 files, 800 already in the archive") {
		t.Fatalf("second salvage: exit %d:\n%s", code, out)
	}
	checkArchivedOnce(t, root, want, "tiny")

	// Only a consumer's side bucket is damaged: every record is salvaged.
	id2, want2 := testkit.FillBuffer(t, bufPath, salvageHour, counts)
	db := testkit.OpenBuffer(t, bufPath, buffer.Options{})
	if err := db.UpdateSide("x", func(b *bolt.Bucket) error { return b.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.BreakInlineBucket(t, bufPath, buffer.SidePrefix+"x")
	q2 := quarantine(t, bufPath) // in the same second as q, maybe: both are kept
	out, code = salvageBinary(t, cfgPath, q2)
	if code != 0 || !strings.Contains(out, "803 records archived") {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if got := archivedOf(t, root, id2); got != 803 || archivedOf(t, root, id) != 800 {
		t.Errorf("%d records of the second buffer archived, want 803", got)
	}
	checkArchivedOnce(t, root, want2, "")

	missing := bufPath + ".corrupt-missing"
	if out, code := salvageBinary(t, cfgPath, missing); code != 1 || buffer.Salvaged(missing) {
		t.Errorf("a missing file: exit %d, marked %v, want 1 and no mark:\n%s", code, buffer.Salvaged(missing), out)
	}
}
