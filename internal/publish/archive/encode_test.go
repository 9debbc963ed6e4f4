package archive_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// manyEntries is enough entries for several batches and row groups of 64.
func manyEntries(n int) []archive.Entry {
	var e []archive.Entry
	for seq := uint64(1); seq <= uint64(n); seq++ {
		e = append(e, entry(seq, frame.Text, fmt.Sprintf(`{"user":"u%d","t":%d,"payload":{"v":%d}}`, seq%7, 1700000000000+seq, seq)))
	}
	return e
}

// encoders counts this process's goroutines that run a writer's encoder.
func encoders(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	return strings.Count(b.String(), "archive.(*encoder).run(")
}

// published lists the Parquet files under root.
func published(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestEncodeErrorFailsTheFile makes the write of the first row group fail
// on the encoding goroutine: the error must come back through Add or
// Publish, nothing may be published and the temporary file must go.
func TestEncodeErrorFailsTheFile(t *testing.T) {
	testkit.NeedFailpoints(t)
	disarm, err := failpoint.Arm(archive.FailMidWrite + ":error")
	if err != nil {
		t.Fatal(err)
	}
	defer disarm()
	root := t.TempDir()
	w, err := archive.Create(root, "spin30", hour14, archive.Options{RowGroupRows: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	var addErr error
	for _, e := range manyEntries(2000) {
		if addErr = w.Add(e); addErr != nil {
			break
		}
	}
	_, pubErr := w.Publish()
	if !errors.Is(pubErr, failpoint.ErrInjected) {
		t.Errorf("Publish: %v, want the injected write error", pubErr)
	}
	if addErr != nil && !errors.Is(addErr, failpoint.ErrInjected) {
		t.Errorf("Add: %v, want the injected write error", addErr)
	}
	if f := published(t, root); len(f) > 0 {
		t.Errorf("published %v after a failed write", f)
	}
	if tmp := tempFiles(t, root); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if n := encoders(t); n > 0 {
		t.Errorf("%d encoder goroutines still running", n)
	}
}

// TestAbortWhileEncoding aborts a writer that has handed batches over:
// Abort waits for its encoder, so no goroutine writes to the closed file,
// and removes the temporary file.
func TestAbortWhileEncoding(t *testing.T) {
	root := t.TempDir()
	w, err := archive.Create(root, "spin30", hour14, archive.Options{RowGroupRows: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range manyEntries(2000) {
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if n := encoders(t); n != 1 {
		t.Fatalf("%d encoder goroutines while writing, want 1", n)
	}
	w.Abort()
	if n := encoders(t); n != 0 {
		t.Errorf("%d encoder goroutines after Abort", n)
	}
	if tmp := tempFiles(t, root); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	if f := published(t, root); len(f) > 0 {
		t.Errorf("published %v", f)
	}
	if err := w.Add(entry(3000, frame.Text, legacy)); err == nil {
		t.Error("Add after Abort succeeded")
	}
}

// TestManyBatchesReadBackExactly writes entries across many batches and
// row groups, messages glued and not, and checks every frame comes back
// byte for byte in order: the batches handed between goroutines must
// neither lose, repeat nor mix rows.
func TestManyBatchesReadBackExactly(t *testing.T) {
	root := t.TempDir()
	entries := manyEntries(3000)
	for i := range entries {
		if i%9 == 0 { // three messages in one frame
			d := string(entries[i].Rec.Data)
			entries[i].Rec.Data = []byte(d + d + d)
		}
	}
	path := write(t, root, "spin30", hour14, archive.Options{RowGroupRows: 100}, entries...)
	rows, _, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	got := frames(rows)
	if len(got) != len(entries) {
		t.Fatalf("%d frames read back, want %d", len(got), len(entries))
	}
	for _, e := range entries {
		if string(got[int64(e.Seq)]) != string(e.Rec.Data) {
			t.Fatalf("seq %d: read back %q, want %q", e.Seq, got[int64(e.Seq)], e.Rec.Data)
		}
	}
	if _, err := archive.Verify(path); err != nil {
		t.Fatal(err)
	}
}

// TestRawBytesBetweenNullsKeepsItsNulls writes frames whose raw_bytes is
// null (text) around frames whose raw_bytes is set (binary): parquet-go
// writes an optional []byte column wrongly when, in one write, y null rows
// are followed by y set rows and then only nulls (rows nil, [1], nil came
// back nil, [1], [], and the file failed its verify), so the encoder must
// never hand it such a run.
func TestRawBytesBetweenNullsKeepsItsNulls(t *testing.T) {
	for y := 1; y <= 3; y++ {
		t.Run(fmt.Sprintf("%d and %d", y, y), func(t *testing.T) {
			var entries []archive.Entry
			for seq := uint64(1); seq <= 300; seq++ {
				if seq > uint64(y) && seq <= uint64(2*y) {
					entries = append(entries, entry(seq, frame.Binary, "\x00\x01"))
				} else {
					entries = append(entries, entry(seq, frame.Text, legacy))
				}
			}
			path := write(t, t.TempDir(), "spin30", hour14, archive.Options{}, entries...)
			rows, _, err := archive.ReadRows(path)
			if err != nil {
				t.Fatal(err)
			}
			wrong := 0
			for _, r := range rows {
				if binary := r.Kind == "binary"; (r.RawBytes != nil) != binary {
					if wrong++; wrong == 1 {
						t.Errorf("seq %d (%s): raw_bytes set = %v", r.Seq, r.Kind, r.RawBytes != nil)
					}
				}
			}
			if wrong > 1 {
				t.Errorf("%d rows in all with raw_bytes wrong", wrong)
			}
			if _, err := archive.Verify(path); err != nil {
				t.Fatal(err)
			}
		})
	}
}
