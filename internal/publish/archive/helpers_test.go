package archive_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

var hour14 = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

// entry builds a record of spin30 received at hour14 + seq seconds
// and 123456 microseconds, with the clock synced on even seqs.
func entry(seq uint64, kind frame.Kind, data string) archive.Entry {
	return archive.Entry{Seq: seq, Rec: frame.Record{
		Stream:      "spin30",
		Received:    hour14.Add(time.Duration(seq)*time.Second + 123456*time.Microsecond),
		ClockSynced: seq%2 == 0,
		Kind:        kind,
		Data:        []byte(data),
	}}
}

// write publishes entries as stream's file for hour under root.
func write(t testing.TB, root, stream string, hour time.Time, opts archive.Options, entries ...archive.Entry) string {
	t.Helper()
	w, err := archive.Create(root, stream, hour, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, e := range entries {
		e.Rec.Stream = stream
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// frames rebuilds each seq's frame bytes from rows, as a reader would.
func frames(rows []archive.Row) map[int64][]byte {
	out := map[int64][]byte{}
	for _, r := range rows {
		var b []byte
		switch {
		case r.Kind == archive.KindStatement:
			b = append([]byte(*r.Query+"\n"), r.RawBytes...)
			if r.Raw != nil {
				b = append(b, *r.Raw...)
			}
		case r.RawBytes != nil:
			b = r.RawBytes
		case r.Raw != nil:
			b = []byte(*r.Raw)
		case r.Detail != nil:
			b = []byte(*r.Detail)
		case r.Error != nil: // format 1 events
			b = []byte(*r.Error)
		}
		out[r.Seq] = append(out[r.Seq], b...)
	}
	return out
}

// tempFiles lists leftover temporary files under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".tmp") {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// checkTree is the invariant every test's archive must keep: all files
// verify, no duplicates, no temporary files left behind.
func checkTree(t *testing.T, root string) {
	t.Helper()
	t.Cleanup(func() {
		if _, problems := archive.VerifyTree(root); len(problems) > 0 {
			t.Errorf("archive tree invariant broken: %v", problems)
		}
		if tmp := tempFiles(t, root); len(tmp) > 0 {
			t.Errorf("temporary files left behind: %v", tmp)
		}
	})
}

func s(v string) *string { return &v }
func i64(v int64) *int64 { return &v }
