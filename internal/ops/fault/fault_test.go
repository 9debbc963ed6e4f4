package fault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/testkit"
)

var t0 = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

// logs is a logger whose output the test reads.
func logs() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func open(t *testing.T, path string, clk *testkit.Clock) (*Store, *bytes.Buffer) {
	t.Helper()
	log, buf := logs()
	return Open(path, Options{Now: clk.Now, Logger: log}), buf
}

func kinds(fs []Fault) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Kind))
	}
	return out
}

// onDisk reads the saved record as another process would.
func onDisk(t *testing.T, path string) file {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc file
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return doc
}

func TestReportMergesByKind(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, _ := open(t, filepath.Join(t.TempDir(), "faults.json"), clk)
	if got := s.Active(t0); len(got) != 0 {
		t.Fatalf("new store has faults: %v", got)
	}
	s.Report(RecordsSetAside, "spin30 hour 13: 2 records", 2)
	clk.Advance(time.Minute)
	s.Report(BufferQuarantined, "/data/buffer.db.corrupt-1", 1)
	clk.Advance(time.Minute)
	s.Report(RecordsSetAside, "spin31 hour 13: 5 records", 5)

	got := s.Active(clk.Now())
	if strings.Join(kinds(got), ",") != "records_set_aside,buffer_quarantined" {
		t.Fatalf("active %v, want the most recent first", kinds(got))
	}
	want := Fault{Kind: RecordsSetAside, Detail: "spin31 hour 13: 5 records", Count: 7, First: t0, Last: t0.Add(2 * time.Minute)}
	if f := got[0]; f.Kind != want.Kind || f.Detail != want.Detail || f.Count != want.Count || !f.First.Equal(want.First) || !f.Last.Equal(want.Last) {
		t.Errorf("merged fault %+v, want %+v", f, want)
	}
	if c := s.Counts(); c[RecordsSetAside] != 7 || c[BufferQuarantined] != 1 || len(c) != 2 {
		t.Errorf("counts %v", c)
	}
}

func TestExpiryAt24Hours(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, _ := open(t, filepath.Join(t.TempDir(), "faults.json"), clk)
	s.Report(FramesRefused, "buffer full", 10)
	if got := s.Active(t0.Add(24*time.Hour - time.Nanosecond)); len(got) != 1 {
		t.Errorf("just before 24 h: %v, want still active", got)
	}
	if got := s.Active(t0.Add(24 * time.Hour)); len(got) != 0 {
		t.Errorf("at 24 h: %v, want expired", got)
	}
	// Expired faults stay on record, with their totals.
	if all := s.All(); len(all) != 1 || all[0].Count != 10 {
		t.Errorf("all after expiry: %+v", all)
	}
	// Reported again, it is active again, counted from the start.
	clk.Advance(30 * time.Hour)
	s.Report(FramesRefused, "buffer full again", 1)
	got := s.Active(clk.Now())
	if len(got) != 1 || got[0].Count != 11 || !got[0].First.Equal(t0) {
		t.Errorf("re-reported after expiry: %+v", got)
	}

	// The expiry is configurable.
	short := Open("", Options{Now: clk.Now, Expiry: time.Hour})
	short.Report(BufferQuarantined, "x", 1)
	if len(short.Active(clk.Now().Add(59*time.Minute))) != 1 || len(short.Active(clk.Now().Add(time.Hour))) != 0 {
		t.Error("a 1 h expiry is not honoured")
	}
}

func TestAckAndReportAgain(t *testing.T) {
	clk := testkit.NewClock(t0)
	path := filepath.Join(t.TempDir(), "faults.json")
	s, _ := open(t, path, clk)
	s.Report(BufferQuarantined, "/data/buffer.db.corrupt-1", 1)
	s.Report(IdentityConflict, "archive/stream=spin30/x.parquet", 1)
	ackAt := clk.Advance(time.Hour)
	if err := s.Ack(ackAt); err != nil {
		t.Fatal(err)
	}
	if got := s.Active(ackAt); len(got) != 0 {
		t.Fatalf("after ack: %v", kinds(got))
	}
	for _, f := range onDisk(t, path).Faults {
		if !f.Acked || f.AckedAt == nil || !f.AckedAt.Equal(ackAt) {
			t.Errorf("ack not saved: %+v", f)
		}
	}
	// Only the kind reported again comes back.
	clk.Advance(time.Minute)
	s.Report(IdentityConflict, "archive/stream=spin30/y.parquet", 1)
	got := s.Active(clk.Now())
	if len(got) != 1 || got[0].Kind != IdentityConflict || got[0].Count != 2 || got[0].Detail != "archive/stream=spin30/y.parquet" || got[0].Acked {
		t.Errorf("after report past the ack: %+v", got)
	}
	// And is saved at once as active, though the ack saved moments ago.
	for _, f := range onDisk(t, path).Faults {
		if f.Kind == IdentityConflict && f.Acked {
			t.Errorf("re-reported fault saved as acknowledged: %+v", f)
		}
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	clk := testkit.NewClock(t0)
	path := filepath.Join(t.TempDir(), "faults.json")
	s, _ := open(t, path, clk)
	s.Report(BufferQuarantined, "/data/buffer.db.corrupt-1", 1)
	// A first report is on disk at once, without Flush: a crash right
	// after a quarantine must not forget it.
	r, _ := open(t, path, clk)
	got := r.Active(clk.Now())
	if len(got) != 1 || got[0].Kind != BufferQuarantined || got[0].Detail != "/data/buffer.db.corrupt-1" || !got[0].First.Equal(t0) {
		t.Fatalf("reopened: %+v", got)
	}

	// Counts of an active fault are saved at most every SaveEvery, and by Flush.
	s.Report(BufferQuarantined, "/data/buffer.db.corrupt-2", 1)
	if f := onDisk(t, path).Faults[0]; f.Count != 1 {
		t.Errorf("saved again within SaveEvery: count %d", f.Count)
	}
	clk.Advance(DefaultSaveEvery)
	s.Report(BufferQuarantined, "/data/buffer.db.corrupt-3", 1)
	if f := onDisk(t, path).Faults[0]; f.Count != 3 || f.Detail != "/data/buffer.db.corrupt-3" {
		t.Errorf("not saved after SaveEvery: %+v", f)
	}
	s.Report(BufferQuarantined, "/data/buffer.db.corrupt-4", 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	r, _ = open(t, path, clk)
	if got := r.Active(clk.Now()); len(got) != 1 || got[0].Count != 4 || !got[0].Last.Equal(clk.Now()) {
		t.Errorf("after flush and reopen: %+v", got)
	}
	// No temporary files are left behind.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// The ack persists too.
	if err := r.Ack(clk.Now()); err != nil {
		t.Fatal(err)
	}
	r, _ = open(t, path, clk)
	if got := r.Active(clk.Now()); len(got) != 0 {
		t.Errorf("ack forgotten on reopen: %+v", got)
	}
}

func TestMissingAndCorruptFiles(t *testing.T) {
	clk := testkit.NewClock(t0)
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.json")
	s, log := open(t, missing, clk)
	if len(s.All()) != 0 || log.Len() != 0 {
		t.Errorf("missing file: %v, log %q", s.All(), log)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("opening with no faults created the file: %v", err)
	}

	for name, content := range map[string]string{
		"garbage":     "\x00\x01garbage",
		"truncated":   `{"version":1,"faults":[{"kind":"buffer_quar`,
		"version":     `{"version":99,"faults":[]}`,
		"no kind":     `{"version":1,"faults":[{"count":3}]}`,
		"empty":       ``,
		"not objects": `[1,2,3]`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "faults.json")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			s, log := open(t, path, clk)
			if len(s.All()) != 0 {
				t.Errorf("faults from a corrupt file: %+v", s.All())
			}
			if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "fault record unreadable") {
				t.Errorf("corrupt file not logged: %q", log)
			}
			// Replaced by a valid, empty record: the next start is quiet.
			if doc := onDisk(t, path); doc.Version != fileVersion || len(doc.Faults) != 0 {
				t.Errorf("not replaced: %+v", doc)
			}
			s.Report(BufferQuarantined, "q", 1)
			r, log2 := open(t, path, clk)
			if len(r.Active(clk.Now())) != 1 || log2.Len() != 0 {
				t.Errorf("after replacement: %+v, log %q", r.All(), log2)
			}
		})
	}
}

func TestUnwritableFolderIsNotFatal(t *testing.T) {
	clk := testkit.NewClock(t0)
	path := filepath.Join(t.TempDir(), "gone", "faults.json")
	s, log := open(t, path, clk)
	s.Report(BufferQuarantined, "q", 1)
	if got := s.Active(clk.Now()); len(got) != 1 {
		t.Errorf("fault not kept in memory: %v", got)
	}
	if !strings.Contains(log.String(), "fault record not saved") {
		t.Errorf("save failure not logged: %q", log)
	}
	if err := s.Ack(clk.Now()); err == nil || !strings.Contains(err.Error(), "save fault record") {
		t.Errorf("ack: %v, want the save error", err)
	}
	if got := s.Active(clk.Now()); len(got) != 0 {
		t.Errorf("ack not kept in memory: %v", got)
	}
}

func TestNilStore(t *testing.T) {
	var s *Store
	s.Report(FramesRefused, "x", 1)
	if s.Active(t0) != nil || s.All() != nil || len(s.Counts()) != 0 || s.Ack(t0) != nil || s.Flush() != nil {
		t.Error("a nil store is not a no-op")
	}
}

// Many goroutines report while others read and acknowledge; run with -race.
func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	s := Open(path, Options{SaveEvery: time.Nanosecond})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				s.Report(Kinds[(i+j)%len(Kinds)], fmt.Sprintf("g%d-%d", i, j), 1)
				_ = s.Active(time.Now())
				if j%10 == 0 {
					_ = s.Ack(time.Now())
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for _, n := range s.Counts() {
		total += n
	}
	if total != 8*50 {
		t.Errorf("total count %d, want %d", total, 8*50)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var saved int64
	for _, f := range onDisk(t, path).Faults {
		saved += f.Count
	}
	if saved != total {
		t.Errorf("saved total %d, want %d", saved, total)
	}
}

// A record that cannot be saved (a full or read-only disk) while a fault is
// reported again and again is logged once, then once per retrylog.Every,
// not at every report.
func TestUnsavedRecordLoggedOncePerRun(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, log := open(t, filepath.Join(t.TempDir(), "gone", "faults.json"), clk)
	for range 50 {
		s.Report(FramesRefused, "the disk is full", 1)
		clk.Advance(time.Second)
	}
	if n := strings.Count(log.String(), "fault record not saved"); n != 1 {
		t.Fatalf("%d lines for 50 failed saves in 50 s, want 1:\n%.1000s", n, log.String())
	}
	clk.Advance(time.Minute)
	s.Report(FramesRefused, "the disk is full", 1)
	if n := strings.Count(log.String(), "fault record still not saved"); n != 1 {
		t.Fatalf("no line a minute on:\n%.1000s", log.String())
	}
}
