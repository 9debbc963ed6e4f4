package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

var t0 = time.Date(2026, 11, 26, 14, 10, 0, 0, time.UTC)

type fixture struct {
	t    *testing.T
	db   *buffer.DB
	root string
	now  time.Time
	c    *Compactor
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	db := testkit.OpenBuffer(t, filepath.Join(dir, "buffer.db"), buffer.Options{})
	f := &fixture{t: t, db: db, root: filepath.Join(dir, "archive"), now: t0}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.mark()
	f.c = New(db, Options{Root: f.root, Require: "marker", Grace: 2 * time.Minute, RowGroupRows: 100,
		Now: func() time.Time { return f.now }})
	return f
}

func (f *fixture) mark() {
	if err := os.WriteFile(filepath.Join(f.root, archive.MarkerFile), nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// record appends n text frames per stream at time at.
func (f *fixture) record(at time.Time, n int, streams ...string) {
	f.t.Helper()
	var recs []frame.Record
	for i := range n {
		for _, s := range streams {
			recs = append(recs, frame.Record{Stream: s, Received: at.Add(time.Duration(i) * time.Millisecond),
				ClockSynced: true, Kind: frame.Text,
				Data: []byte(fmt.Sprintf(`{"user":"u%d","t":%d,"payload":{"n":%d}}{"user":"u%d","type":"response","payload":NaN}`, i%3, at.UnixMilli(), i, i%3))})
		}
	}
	if err := f.db.Append(recs); err != nil {
		f.t.Fatal(err)
	}
}

// publishUnsettled archives the buffer's group of stream's hour without
// settling it: what a power cut between publish and settle leaves.
func (f *fixture) publishUnsettled(stream string, hour time.Time) {
	f.t.Helper()
	w, err := archive.Create(f.root, stream, hour, archive.Options{BufferID: f.db.ID()})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.db.Scan(f.group(stream, hour), 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		return w.Add(archive.Entry{Seq: seq, Rec: r})
	}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := w.Publish(); err != nil {
		f.t.Fatal(err)
	}
}

// group is the fixture buffer's group of stream's hour.
func (f *fixture) group(stream string, hour time.Time) buffer.Group {
	return buffer.Group{BufferID: f.db.ID(), Stream: stream, Hour: frame.Hour(hour)}
}

func (f *fixture) pending() int {
	p, err := f.db.Pending()
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, s := range p {
		n += s.Records
	}
	return n
}

// archived verifies the whole tree and returns the frames of each stream.
func (f *fixture) archived() map[string]int {
	f.t.Helper()
	_, problems := archive.VerifyTree(f.root)
	for _, p := range problems {
		f.t.Errorf("verify: %s: %v", p.Path, p.Err)
	}
	frames := map[string]int{}
	_ = filepath.WalkDir(f.root, func(path string, d os.DirEntry, err error) error {
		if err == nil && filepath.Ext(path) == ".parquet" {
			m, err := archive.ReadMeta(path)
			if err != nil {
				f.t.Fatal(err)
			}
			frames[m.Stream] += int(m.Frames)
		}
		return nil
	})
	return frames
}

func TestCompactsClosedHoursOnly(t *testing.T) {
	f := newFixture(t)
	f.record(t0.Add(-2*time.Hour), 150, "spin30", "spin31") // 12h
	f.record(t0.Add(-time.Hour), 20, "spin30")              // 13h
	f.record(t0, 5, "spin30")                               // 14h, open
	res := f.c.RunOnce(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Files != 3 || res.Records != 320 {
		t.Fatalf("result %+v, want 3 files and 320 records", res)
	}
	if got := f.archived(); got["spin30"] != 170 || got["spin31"] != 150 {
		t.Fatalf("archived %v", got)
	}
	if n := f.pending(); n != 5 {
		t.Fatalf("%d records left in the buffer, want the open hour's 5", n)
	}
	// Before hh:00 + grace the previous hour is not closed yet.
	f.now = t0.Truncate(time.Hour).Add(time.Hour + time.Minute)
	if res := f.c.RunOnce(context.Background()); res.Files != 0 {
		t.Fatalf("archived an hour within its grace period: %+v", res)
	}
	f.now = f.now.Add(time.Minute)
	if res := f.c.RunOnce(context.Background()); res.Files != 1 || f.pending() != 0 {
		t.Fatalf("after the grace: %+v, %d pending", res, f.pending())
	}
}

func TestLateFramesGoToANewFile(t *testing.T) {
	f := newFixture(t)
	h := t0.Add(-2 * time.Hour)
	f.record(h, 10, "spin30")
	if res := f.c.RunOnce(context.Background()); res.Files != 1 {
		t.Fatalf("%+v", res)
	}
	f.record(h.Add(time.Minute), 4, "spin30") // the clock went back, say
	if res := f.c.RunOnce(context.Background()); res.Files != 1 || res.Records != 4 {
		t.Fatalf("%+v", res)
	}
	if got := f.archived(); got["spin30"] != 14 {
		t.Fatalf("archived %v, want 14 frames in two files", got)
	}
}

// TestCrashBetweenPublishAndDelete leaves a published file whose records are
// still buffered, as a power cut after the rename would, and checks that the
// next run deletes them without writing them twice, even after new records
// for the same hour arrived.
func TestCrashBetweenPublishAndDelete(t *testing.T) {
	f := newFixture(t)
	h := frame.Hour(t0.Add(-2 * time.Hour))
	f.record(h, 30, "spin30")
	f.publishUnsettled("spin30", h)
	f.record(h.Add(30*time.Minute), 3, "spin30")
	res := f.c.RunOnce(context.Background())
	if res.Err != nil || res.Files != 1 || res.Records != 3 {
		t.Fatalf("result %+v, want only the 3 new records archived", res)
	}
	if got := f.archived(); got["spin30"] != 33 {
		t.Fatalf("archived %v, want 33", got)
	}
	if f.pending() != 0 {
		t.Fatalf("%d records left", f.pending())
	}
}

func TestDamagedFileIsSetAsideAndRewritten(t *testing.T) {
	f := newFixture(t)
	h := frame.Hour(t0.Add(-2 * time.Hour))
	f.record(h, 30, "spin30")
	dir := archive.PartitionDir(f.root, "spin30", h)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, archive.FileName(archive.Name{Stream: "spin30", Hour: h, BufferID: f.db.ID(), First: 1, Last: 30}))
	if err := os.WriteFile(bad, []byte("PAR1 garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := f.c.RunOnce(context.Background())
	if res.Err != nil || res.Files != 1 {
		t.Fatalf("%+v", res)
	}
	if _, err := os.Stat(bad + ".bad"); err != nil {
		t.Fatalf("damaged file not set aside: %v", err)
	}
	if got := f.archived(); got["spin30"] != 30 {
		t.Fatalf("archived %v", got)
	}
}

func TestMissingDriveKeepsRecords(t *testing.T) {
	f := newFixture(t)
	f.record(t0.Add(-2*time.Hour), 10, "spin30")
	if err := os.Remove(filepath.Join(f.root, archive.MarkerFile)); err != nil {
		t.Fatal(err)
	}
	res := f.c.RunOnce(context.Background())
	var target *archive.TargetError
	if !errors.As(res.Err, &target) || !errors.Is(res.Err, archive.ErrNotMounted) {
		t.Fatalf("err = %v, want not mounted", res.Err)
	}
	if f.pending() != 10 || f.c.Last().Err == nil {
		t.Fatalf("records must stay and the failure be reported: %d pending, last %+v", f.pending(), f.c.Last())
	}
	if err := os.RemoveAll(f.root); err != nil {
		t.Fatal(err)
	}
	if res := f.c.RunOnce(context.Background()); !errors.Is(res.Err, archive.ErrNoTarget) {
		t.Fatalf("err = %v, want no target", res.Err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(f.root)); len(entries) != 1 {
		t.Fatalf("something was written outside the archive: %v", entries)
	}
	_ = os.Mkdir(f.root, 0o755)
	f.mark()
	if res := f.c.RunOnce(context.Background()); res.Err != nil || f.pending() != 0 {
		t.Fatalf("after the drive came back: %+v, %d pending", res, f.pending())
	}
}

// mountTmpfs mounts a small tmpfs at dir; it needs root.
func mountTmpfs(t *testing.T, dir string, size string) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); this fault test needs root", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

func TestFullDriveKeepsRecords(t *testing.T) {
	f := newFixture(t)
	mountTmpfs(t, f.root, "2m")
	f.mark()
	f.record(t0.Add(-2*time.Hour), 3000, "spin30")
	filler, err := os.Create(filepath.Join(f.root, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	res := f.c.RunOnce(context.Background())
	if !errors.Is(res.Err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", res.Err)
	}
	if f.pending() != 3000 {
		t.Fatalf("%d pending, want all 3000 kept", f.pending())
	}
	if entries, _ := filepath.Glob(filepath.Join(f.root, "stream=*", "*", "*")); len(entries) != 0 {
		t.Fatalf("left files behind on the full drive: %v", entries)
	}
	_ = filler.Close()
	_ = os.Remove(filler.Name())
	if res := f.c.RunOnce(context.Background()); res.Err != nil || f.pending() != 0 {
		t.Fatalf("after space was freed: %+v, %d pending", res, f.pending())
	}
	if got := f.archived(); got["spin30"] != 3000 {
		t.Fatalf("archived %v", got)
	}
}

func TestReadOnlyDriveKeepsRecords(t *testing.T) {
	f := newFixture(t)
	mountTmpfs(t, f.root, "1m")
	f.mark()
	if err := unix.Mount("", f.root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	f.record(t0.Add(-2*time.Hour), 10, "spin30")
	res := f.c.RunOnce(context.Background())
	if !errors.Is(res.Err, syscall.EROFS) && !errors.Is(res.Err, archive.ErrReadOnly) {
		t.Fatalf("err = %v, want read-only", res.Err)
	}
	if f.pending() != 10 {
		t.Fatalf("%d pending, want 10", f.pending())
	}
}

func TestScheduleAlignsToTheHour(t *testing.T) {
	c := New(nil, Options{Interval: time.Hour, Grace: 2 * time.Minute})
	for _, tc := range []struct {
		now  string
		want time.Duration
	}{
		{"14:00:00", 2 * time.Minute},
		{"14:01:59", time.Second},
		{"14:02:00", time.Hour},
		{"14:30:00", 32 * time.Minute},
	} {
		now, _ := time.Parse("2006-01-02 15:04:05", "2026-11-26 "+tc.now)
		if got := c.untilNext(now); got != tc.want {
			t.Errorf("at %s: next run in %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestRunTriggerAndStop(t *testing.T) {
	f := newFixture(t)
	f.record(t0.Add(-2*time.Hour), 5, "spin30")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.c.Run(ctx)
	}()
	// The start-up run archives the leftovers; a trigger runs again.
	f.record(t0.Add(-2*time.Hour), 2, "spin30")
	f.c.Trigger()
	cancel()
	<-done
	// Whatever the interleaving, a final explicit run leaves nothing behind
	// and nothing twice.
	f.c.RunOnce(context.Background())
	if got := f.archived(); got["spin30"] != 7 || f.pending() != 0 {
		t.Fatalf("archived %v, pending %d", got, f.pending())
	}
}

// With nothing to archive and no drive, the run fails and says why: it
// must not read as "ok, 0 files".
func TestNothingToArchiveWithoutDriveIsAFailure(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	f.c.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	if err := os.Remove(filepath.Join(f.root, archive.MarkerFile)); err != nil {
		t.Fatal(err)
	}
	res := f.c.RunOnce(context.Background())
	if !errors.Is(res.Err, archive.ErrNotMounted) || res.Files != 0 {
		t.Fatalf("empty buffer, no drive: %+v", res)
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"compaction failed; records stay in the buffer\"") ||
		!strings.Contains(logs.String(), archive.MarkerFile) {
		t.Errorf("log: %s", logs.String())
	}
	f.mark()
	if res := f.c.RunOnce(context.Background()); res.Err != nil {
		t.Errorf("empty buffer, drive back: %v", res.Err)
	}
}

// The drive fills in the middle of a run of several hours: a group's file
// is checked and settled while the next one is written, and the run stops
// at the first full write. Every record is then archived once or still in
// the buffer, no temporary file is left, and once there is room the next
// run archives the rest.
func TestDriveFillsDuringARunOfManyGroups(t *testing.T) {
	f := newFixture(t)
	mountTmpfs(t, f.root, "1m")
	f.mark()
	streams := []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
	const per = 2000
	for h := range 2 {
		f.record(t0.Add(-time.Duration(3-h)*time.Hour), per, streams...)
	}
	total := 2 * per * len(streams)
	res := f.c.RunOnce(context.Background())
	if !errors.Is(res.Err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC (make the drive smaller or the hours larger)", res.Err)
	}
	got := f.archived()
	n := 0
	for _, c := range got {
		n += c
	}
	t.Logf("a full drive after %d files: %d of %d records archived", res.Files, n, total)
	if n == 0 || n+f.pending() != total || n != res.Records {
		t.Fatalf("archived %d, pending %d, result %d records: want some archived and all %d once", n, f.pending(), res.Records, total)
	}
	if tmp, _ := filepath.Glob(filepath.Join(f.root, "stream=*", "*", ".*")); len(tmp) != 0 {
		t.Fatalf("temporary files left on the drive: %v", tmp)
	}
	// Room on a bigger drive: the same files, and the rest.
	if err := unix.Mount("tmpfs", f.root, "tmpfs", unix.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	if res := f.c.RunOnce(context.Background()); res.Err != nil || f.pending() != 0 {
		t.Fatalf("with room: %+v, %d pending", res, f.pending())
	}
	n = 0
	for _, c := range f.archived() {
		n += c
	}
	if n != total {
		t.Fatalf("archived %d records in all, want %d once", n, total)
	}
}

// One group that cannot be settled (its records' consumer fails) keeps its
// records and fails the run, while the groups written before and after it
// are archived; the next run settles it from the file already published.
func TestOneGroupFailingToSettleKeepsItsRecords(t *testing.T) {
	f := newFixture(t)
	streams := []string{"s1", "s2", "s3", "s4"}
	f.record(t0.Add(-2*time.Hour), 500, streams...)
	failing := true
	f.c.opts.BeforeSettle = func(g buffer.Group, last uint64) error {
		if failing && g.Stream == "s2" {
			return errors.New("consumer down")
		}
		return nil
	}
	res := f.c.RunOnce(context.Background())
	if res.Err == nil || !strings.Contains(res.Err.Error(), "s2") || !strings.Contains(res.Err.Error(), "consumer down") {
		t.Fatalf("err = %v, want s2's consumer failure", res.Err)
	}
	if f.pending() != 500 || res.Records != 1500 {
		t.Fatalf("%d pending, %d archived: want s2's 500 kept and the other 1500 archived", f.pending(), res.Records)
	}
	failing = false
	if res := f.c.RunOnce(context.Background()); res.Err != nil || f.pending() != 0 {
		t.Fatalf("second run: %+v, %d pending", res, f.pending())
	}
	if got := f.archived(); len(got) != 4 || got["s1"] != 500 || got["s2"] != 500 {
		t.Fatalf("archived %v, want 500 of each stream once", got)
	}
}

// A run cancelled while it writes a group (lablog stopping) finishes the
// group before it, keeps every record of the rest, leaves no temporary
// file, and the next run archives them once.
func TestCancelledWhileWritingKeepsTheRest(t *testing.T) {
	f := newFixture(t)
	streams := []string{"s1", "s2", "s3", "s4"}
	f.record(t0.Add(-2*time.Hour), 500, streams...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := 0
	f.c.opts.Filter = func(seq uint64, r frame.Record) (frame.Record, bool) {
		if r.Stream == "s2" {
			if seen++; seen == 250 {
				cancel()
			}
		}
		return r, true
	}
	res := f.c.RunOnce(ctx)
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("err = %v, want the cancellation", res.Err)
	}
	if got := f.archived(); got["s1"] != 500 || len(got) != 1 || f.pending() != 1500 {
		t.Fatalf("archived %v, %d pending: want s1 done and the other 1500 kept", got, f.pending())
	}
	if tmp, _ := filepath.Glob(filepath.Join(f.root, "stream=*", "*", ".*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if res := f.c.RunOnce(context.Background()); res.Err != nil || f.pending() != 0 {
		t.Fatalf("second run: %+v, %d pending", res, f.pending())
	}
	if got := f.archived(); len(got) != 4 || got["s2"] != 500 || got["s4"] != 500 {
		t.Fatalf("archived %v, want 500 of each stream once", got)
	}
}
