package retention

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// publish writes a real archive file of stream for hour and returns its
// path relative to root, slash-separated.
func publish(t *testing.T, root, stream string, hour time.Time) string {
	t.Helper()
	w, err := archive.Create(root, stream, hour, archive.Options{BufferID: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	rec := frame.Record{Stream: stream, Received: hour.Add(time.Minute), Kind: frame.Text, Data: []byte(`{"user":"u","t":1}`)}
	if err := w.Add(archive.Entry{Seq: uint64(hour.Unix()), Rec: rec}); err != nil {
		t.Fatal(err)
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, path)
	return filepath.ToSlash(rel)
}

func exists(root, rel string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	return err == nil
}

// A drive with files from 2026-11-20 00:00 to 2026-11-26 23:00 (every
// 6 hours, two streams), swept on the 27th at 10:30 with keep_days 3.
func drive(t *testing.T) (root string, rels []string, hours []time.Time) {
	root = t.TempDir()
	if err := os.WriteFile(filepath.Join(root, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for h := start; h.Before(start.Add(7 * 24 * time.Hour)); h = h.Add(6 * time.Hour) {
		for _, s := range []string{"spin30", "addlog-spinner"} {
			rels = append(rels, publish(t, root, s, h))
			hours = append(hours, h)
		}
	}
	return root, rels, hours
}

var now = time.Date(2026, 11, 27, 10, 30, 0, 0, time.UTC)

func TestSweepRemovesFilesOlderThanKeepDays(t *testing.T) {
	root, rels, hours := drive(t)
	// A stranger's file and a set-aside file stay whatever their age.
	old := filepath.Join(root, "stream=spin30", "date=2026-11-20")
	for _, name := range []string{"notes.parquet", ".spin30-20261120T00-x.parquet.bad"} {
		if err := os.WriteFile(filepath.Join(old, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Options{Root: root, Require: archive.RequireMarker, KeepDays: 3, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)})
	if err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	cutoff := now.Add(-3 * 24 * time.Hour) // 2026-11-24 10:30: hours ending by then go
	var removed int
	var oldestKept time.Time
	for i, rel := range rels {
		gone := !hours[i].Add(time.Hour).After(cutoff)
		if exists(root, rel) == gone {
			t.Errorf("%s: removed %v, want %v", rel, !exists(root, rel), gone)
		}
		if gone {
			removed++
		} else if oldestKept.IsZero() {
			oldestKept = hours[i]
		}
	}
	st := s.Stats()
	if st.FilesRemoved != int64(removed) || st.FilesKept != len(rels)-removed || !st.OldestKept.Equal(oldestKept) ||
		st.Held != 0 || st.BytesRemoved <= 0 || !st.LastSweepAt.Equal(now) || st.LastError != "" {
		t.Errorf("stats %+v; want %d removed, oldest kept %v", st, removed, oldestKept)
	}
	if oldestKept != time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) {
		t.Fatalf("test drive: oldest kept %v", oldestKept)
	}
	// Emptied date folders go; one holding a stranger's file stays.
	if _, err := os.Stat(filepath.Join(root, "stream=addlog-spinner", "date=2026-11-20")); !os.IsNotExist(err) {
		t.Errorf("emptied date folder kept: %v", err)
	}
	for _, name := range []string{"notes.parquet", ".spin30-20261120T00-x.parquet.bad"} {
		if _, err := os.Stat(filepath.Join(old, name)); err != nil {
			t.Errorf("%s removed: %v", name, err)
		}
	}
	// What is left verifies as an archive.
	if files, problems := archive.VerifyTree(root); files != len(rels)-removed+1 || len(problems) != 1 {
		t.Errorf("verify after: %d files, %v", files, problems)
	}
	// A second sweep the same hour removes nothing more.
	if err := s.Sweep(); err != nil || s.Stats().FilesRemoved != int64(removed) {
		t.Errorf("second sweep: %v %+v", err, s.Stats())
	}
}

func TestKeepDaysZeroKeepsEverything(t *testing.T) {
	root, rels, hours := drive(t)
	s := New(Options{Root: root, Require: archive.RequireMarker, Now: func() time.Time { return now.AddDate(5, 0, 0) },
		Logger: slog.New(slog.DiscardHandler)})
	if err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	for _, rel := range rels {
		if !exists(root, rel) {
			t.Errorf("%s removed with keep_days 0", rel)
		}
	}
	if st := s.Stats(); st.FilesRemoved != 0 || st.FilesKept != len(rels) || !st.OldestKept.Equal(hours[0]) {
		t.Errorf("stats %+v", st)
	}
}

func TestNotUploadedIsHeld(t *testing.T) {
	root, rels, hours := drive(t)
	// Only spin30's files are in the bucket; the ledger cannot be read for
	// one date.
	uploaded := func(rel string) (bool, error) {
		if strings.Contains(rel, "date=2026-11-21") && strings.HasPrefix(rel, "stream=addlog") {
			return false, fmt.Errorf("ledger unreadable")
		}
		return strings.HasPrefix(rel, "stream=spin30/"), nil
	}
	s := New(Options{Root: root, Require: archive.RequireMarker, KeepDays: 3, Uploaded: uploaded,
		Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err := s.Sweep(); err == nil || !strings.Contains(err.Error(), "ledger unreadable") {
		t.Errorf("the ledger's error is not reported: %v", err)
	}
	held := 0
	for i, rel := range rels {
		spin := strings.HasPrefix(rel, "stream=spin30/")
		if !spin && !exists(root, rel) {
			t.Errorf("%s removed before it was uploaded", rel)
		}
		if !spin && !hours[i].Add(time.Hour).After(now.Add(-3*24*time.Hour)) {
			held++
		}
	}
	st := s.Stats()
	if st.Held != held || held == 0 || st.FilesRemoved == 0 || st.OldestKept != time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC) ||
		st.LastError == "" {
		t.Errorf("stats %+v, want %d held", st, held)
	}
}

func TestNoDriveNoSweep(t *testing.T) {
	root, rels, _ := drive(t)
	if err := os.Remove(filepath.Join(root, archive.MarkerFile)); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Root: root, Require: archive.RequireMarker, KeepDays: 1, Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)})
	if err := s.Sweep(); err == nil {
		t.Fatal("swept a folder without the archive's marker")
	}
	for _, rel := range rels {
		if !exists(root, rel) {
			t.Fatalf("%s removed from a folder that is not the archive", rel)
		}
	}
	if st := s.Stats(); st.LastError == "" || st.FilesRemoved != 0 {
		t.Errorf("stats %+v", st)
	}
}
