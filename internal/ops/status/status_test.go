package status

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/source"
	"github.com/practable/lablog/internal/testing/testkit"
)

var t0 = time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)

// archiveRoot makes a marked archive with one file of today, one of
// yesterday and a temporary file, so only the first counts as today's.
func archiveRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel string, size int) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(archive.MarkerFile, 0)
	write("stream=spin30/date=2026-11-26/spin30-20261126T13-00000000000000000001-00000000000000000300.parquet", 1000)
	write("stream=spin30/date=2026-11-26/.spin30-20261126T14-123.tmp", 77)
	write("stream=spin30/date=2026-11-25/spin30-20261125T23-00000000000000000001-00000000000000000009.parquet", 500)
	return root
}

// scene is a monitor over a fake pipeline with one stream in each state.
func scene(t *testing.T) (*Monitor, *fakePipeline, *testkit.Clock, string) {
	t.Helper()
	clk := testkit.NewClock(t0)
	root := archiveRoot(t)
	f := &fakePipeline{
		sources: []source.Stats{
			{Stream: "spin30", Connected: true, Since: t0.Add(-10 * time.Minute), Connects: 3, Reconnects: 2, TokenExpiry: t0.Add(365 * 24 * time.Hour)},
			{Stream: "spin31", Since: t0, Connects: 1, LastError: "read: unexpected EOF", Frames: 5, Bytes: 900, LastFrame: t0.Add(-time.Minute)},
			{Stream: "spin32", Since: t0.Add(-5 * time.Minute), LastError: "dial ws://127.0.0.1:8888/ws/spin32: connection refused"},
			{Stream: "pend00", Connected: true, Since: t0, TokenExpiry: t0.Add(72 * time.Hour)},
			{Stream: "pend01", Connected: true, Since: t0, TokenExpiry: t0.Add(-time.Hour)},
			{Stream: "pend02"},
		},
		writer: buffer.WriterStats{Queued: 3, QueueCap: 16384, Committed: 500, Commits: 40, LastCommit: t0},
		size:   1 << 20,
		pending: []buffer.Pending{
			{Stream: "spin31", Records: 5, Oldest: t0},
			{Stream: "spin30", Records: 300, Oldest: t0.Add(-time.Hour)},
		},
		last: compactor.Result{Started: t0.Add(time.Second), Finished: t0.Add(3 * time.Second), Files: 2, Records: 300, Bytes: 5000},
	}
	m := New(f, Options{
		ArchiveRoot: root, Require: archive.RequireMarker, BufferMax: 1 << 30, Version: "v1.2.3",
		Started: t0.Add(-90 * time.Minute), Now: clk.Now, ClockSynced: func() bool { return true },
		Logger: quiet(),
	})
	return m, f, clk, root
}

// advance moves the clock and lets the monitor sample, as Run would.
func advance(m *Monitor, clk *testkit.Clock, d time.Duration) {
	m.sample(clk.Advance(d))
}

func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rr.Result().Body)
	return rr.Code, string(body), rr.Result().Header
}

func TestAPIStatusFieldByField(t *testing.T) {
	m, f, clk, root := scene(t)
	m.sample(t0)
	m.checkArchive(t0)
	f.set(func(f *fakePipeline) { f.faults = fault.Open("", fault.Options{Now: clk.Now}) })
	f.faults.Report(fault.BufferQuarantined, "/data/buffer.db.corrupt-20261126T140000", 1)
	f.set(func(f *fakePipeline) { f.sources[0].Frames, f.sources[0].Bytes, f.writer.Commits = 60, 12000, 41 })
	advance(m, clk, 30*time.Second)
	f.set(func(f *fakePipeline) {
		f.writer.Commits = 42
		f.sources[0].Frames, f.sources[0].Bytes, f.sources[0].Reconnects = 120, 24000, 3
		f.sources[0].LastFrame = t0.Add(58 * time.Second)
	})
	advance(m, clk, 30*time.Second) // now t0+60s

	code, body, hdr := get(t, m.Handler(), "/api/status")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/status: %d %s", code, hdr.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	// Frames counted before the first sample are dated at it (t0), which is
	// out of the last minute by now.
	// The field names are an API: exactly these, documented in docs/status.md.
	keys := func(v any) []string {
		var ks []string
		for k := range v.(map[string]any) {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	wantKeys := map[string][]string{
		"": {"addlog", "analytics", "archive", "buffer", "clock_sync_expected", "clock_synced", "faults", "health", "privacy", "problems", "recording", "retention", "started_at", "streams", "time", "upload", "uptime_seconds", "version"},
		"streams[]": {"bytes_total", "connected", "dropped_total", "last_error", "last_message_age_seconds", "last_message_at", "messages_last_hour",
			"messages_last_minute", "messages_total", "name", "provision", "provision_error", "reconnects_today", "reconnects_total", "since", "state", "token_expires_at"},
		"buffer": {"commit_ms", "committed_total", "disk_full", "dropped_last_hour", "dropped_total", "full", "last_commit_at", "max_bytes", "oldest_waiting", "queue_capacity",
			"queue_depth", "records_waiting", "refused_total", "size_bytes", "writer_error", "writer_stalled"},
		"archive":                 {"available", "bytes_today", "checked_at", "files_today", "free_bytes", "last_compaction", "last_error", "last_error_at", "path", "problem", "require"},
		"archive.last_compaction": {"bytes", "duration_seconds", "error", "files", "finished_at", "ok", "records", "started_at"},
		"problems[]":              {"level", "message"},
		"faults[]":                {"action", "count", "detail", "first", "kind", "last", "level", "message"},
	}
	streams := doc["streams"].([]any)
	got := map[string][]string{
		"": keys(doc), "streams[]": keys(streams[0]), "buffer": keys(doc["buffer"]), "archive": keys(doc["archive"]),
		"archive.last_compaction": keys(doc["archive"].(map[string]any)["last_compaction"]),
		"problems[]":              keys(doc["problems"].([]any)[0]),
		"faults[]":                keys(doc["faults"].([]any)[0]),
	}
	for k, want := range wantKeys {
		if !slices.Equal(got[k], want) {
			t.Errorf("keys of %q:\n got %v\nwant %v", k, got[k], want)
		}
	}

	var s Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	if s.Health != HealthFailing || s.Recording || !s.Time.Equal(now) || s.Version != "v1.2.3" ||
		s.UptimeSeconds != 91*60 || !s.ClockSynced || !s.StartedAt.Equal(t0.Add(-90*time.Minute)) {
		t.Errorf("top level: health %q recording %v time %v version %q uptime %d clock %v started %v",
			s.Health, s.Recording, s.Time, s.Version, s.UptimeSeconds, s.ClockSynced, s.StartedAt)
	}
	byName := map[string]StreamStatus{}
	var names []string
	for _, st := range s.Streams {
		byName[st.Name] = st
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"pend00", "pend01", "pend02", "spin30", "spin31", "spin32"}) {
		t.Errorf("streams in order %v, want sorted by name", names)
	}
	s30 := byName["spin30"]
	age := 2.0
	year := t0.Add(365 * 24 * time.Hour)
	want30 := StreamStatus{Name: "spin30", State: StateConnected, Connected: true, Since: ptr(t0.Add(-10 * time.Minute)),
		MessagesLastMinute: 120, MessagesLastHour: 120, MessagesTotal: 120, BytesTotal: 24000,
		LastMessageAt: ptr(t0.Add(58 * time.Second)), LastMessageAgeSeconds: &age,
		ReconnectsToday: 1, ReconnectsTotal: 3, TokenExpiresAt: &year}
	if !reflect.DeepEqual(normal(s30), normal(want30)) {
		t.Errorf("spin30:\n got %+v\nwant %+v", s30, want30)
	}
	for name, want := range map[string]string{"spin31": StateReconnecting, "spin32": StateError, "pend00": StateTokenExpiring,
		"pend01": StateTokenExpired, "pend02": StateConnecting} {
		if got := byName[name].State; got != want {
			t.Errorf("%s: state %q, want %q", name, got, want)
		}
	}
	if st := byName["spin31"]; st.LastError != "read: unexpected EOF" || st.MessagesTotal != 5 || st.MessagesLastHour != 5 || st.MessagesLastMinute != 0 || *st.LastMessageAgeSeconds != 120 {
		t.Errorf("spin31 = %+v", st)
	}
	if byName["pend02"].LastMessageAt != nil || byName["pend02"].LastMessageAgeSeconds != nil || byName["pend02"].Since != nil {
		t.Errorf("pend02 never connected: times must be null: %+v", byName["pend02"])
	}

	wantBuf := BufferStatus{SizeBytes: 1 << 20, MaxBytes: 1 << 30, RecordsWaiting: 305, OldestWaiting: ptr(t0.Add(-time.Hour)),
		QueueDepth: 3, QueueCapacity: 16384, CommittedTotal: 500, LastCommitAt: ptr(t0)}
	if !reflect.DeepEqual(normalBuf(s.Buffer), normalBuf(wantBuf)) {
		t.Errorf("buffer:\n got %+v\nwant %+v", s.Buffer, wantBuf)
	}

	a := s.Archive
	if a.Path != root || !a.Available || a.Problem != "" || a.FreeBytes == nil || *a.FreeBytes == 0 ||
		a.FilesToday != 1 || a.BytesToday != 1000 || a.LastError != "" || a.LastErrorAt != nil || !a.CheckedAt.Equal(t0) {
		t.Errorf("archive = %+v", a)
	}
	wantComp := CompactionStatus{StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(3 * time.Second), DurationSeconds: 2, OK: true,
		Files: 2, Records: 300, Bytes: 5000}
	if a.LastCompaction == nil || !reflect.DeepEqual(normalComp(*a.LastCompaction), normalComp(wantComp)) {
		t.Errorf("last compaction = %+v, want %+v", a.LastCompaction, wantComp)
	}

	var levels []string
	for _, p := range s.Problems {
		levels = append(levels, p.Level+" "+strings.SplitN(p.Message, ":", 2)[0])
	}
	wantProblems := []string{"failing pend01", "failing spin32", "warning pend00", "warning pend02", "warning spin31", "warning buffer_quarantined"}
	if !slices.Equal(levels, wantProblems) {
		t.Errorf("problems %v\nwant %v", s.Problems, wantProblems)
	}
	if len(s.Problems) == 6 && !strings.Contains(s.Problems[1].Message, "not connected for 6m 0s") {
		t.Errorf("spin32 problem %q should say how long", s.Problems[1].Message)
	}

	wantFaults := []FaultStatus{{Kind: "buffer_quarantined", Level: HealthWarning, Message: "The buffer file was corrupt and was set aside",
		Action: "The damaged file was kept at /data/buffer.db.corrupt-20261126T140000 for inspection; recording continued on a fresh buffer. " +
			"Records in it not yet archived are not in the archive: copy the file off before deleting it to free the SD card.",
		Detail: "/data/buffer.db.corrupt-20261126T140000", Count: 1, First: t0, Last: t0}}
	for i := range s.Faults {
		s.Faults[i].First, s.Faults[i].Last = s.Faults[i].First.UTC(), s.Faults[i].Last.UTC()
	}
	if !reflect.DeepEqual(s.Faults, wantFaults) {
		t.Errorf("faults:\n got %+v\nwant %+v", s.Faults, wantFaults)
	}
}

func ptr[T any](v T) *T { return &v }

// normal makes times comparable with DeepEqual after a JSON round trip.
func normal(s StreamStatus) StreamStatus {
	for _, p := range []**time.Time{&s.Since, &s.LastMessageAt, &s.TokenExpiresAt} {
		if *p != nil {
			*p = ptr((*p).UTC())
		}
	}
	return s
}

func normalBuf(b BufferStatus) BufferStatus {
	for _, p := range []**time.Time{&b.OldestWaiting, &b.LastCommitAt} {
		if *p != nil {
			*p = ptr((*p).UTC())
		}
	}
	return b
}

func normalComp(c CompactionStatus) CompactionStatus {
	c.StartedAt, c.FinishedAt = c.StartedAt.UTC(), c.FinishedAt.UTC()
	return c
}

func TestStreamStates(t *testing.T) {
	now := t0
	exp := func(d time.Duration) time.Time { return now.Add(d) }
	for _, tc := range []struct {
		name   string
		src    source.Stats
		expiry time.Time
		want   string
	}{
		{"before Run", source.Stats{}, time.Time{}, StateConnecting},
		{"first dial pending", source.Stats{Since: now.Add(-time.Second)}, time.Time{}, StateConnecting},
		{"first dial failed", source.Stats{Since: now.Add(-time.Second), LastError: "dial: refused"}, time.Time{}, StateConnecting},
		{"never connected for long", source.Stats{Since: now.Add(-3 * time.Minute), LastError: "dial: refused"}, time.Time{}, StateError},
		{"never tried for long", source.Stats{Since: now.Add(-3 * time.Minute)}, time.Time{}, StateError},
		{"dropped just now", source.Stats{Since: now, Connects: 5, Reconnects: 4, LastError: "read: EOF"}, time.Time{}, StateReconnecting},
		{"down exactly DownAfter", source.Stats{Since: now.Add(-2 * time.Minute), Connects: 1, LastError: "x"}, time.Time{}, StateReconnecting},
		{"connected", source.Stats{Connected: true, Since: now.Add(-time.Hour)}, time.Time{}, StateConnected},
		{"connected, token fine", source.Stats{Connected: true}, exp(31 * 24 * time.Hour), StateConnected},
		{"connected, token soon", source.Stats{Connected: true}, exp(29 * 24 * time.Hour), StateTokenExpiring},
		{"source says expiring", source.Stats{Connected: true, TokenState: source.TokenExpiring}, exp(40 * 24 * time.Hour), StateTokenExpiring},
		{"source says expired", source.Stats{Since: now, TokenState: source.TokenExpired, State: "token expired on 2026-11-25"}, time.Time{}, StateTokenExpired},
		{"token for another topic", source.Stats{Since: now, TokenState: source.TokenWrongTopic, State: "token is for topic spin31-log, not spin30-log"}, time.Time{}, StateError},
		{"token expired", source.Stats{Connected: true}, exp(0), StateTokenExpired},
		{"token expired and down", source.Stats{Since: now.Add(-time.Hour)}, exp(-time.Hour), StateTokenExpired},
		{"token soon but down", source.Stats{Since: now, Connects: 1, LastError: "x"}, exp(time.Hour), StateReconnecting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.Stream = "s"
			tc.src.TokenExpiry = tc.expiry
			f := &fakePipeline{sources: []source.Stats{tc.src}}
			m := New(f, Options{ArchiveRoot: t.TempDir(), Now: func() time.Time { return now }, Logger: quiet()})
			st := m.Snapshot().Streams[0]
			if st.State != tc.want {
				t.Errorf("state %q, want %q", st.State, tc.want)
			}
			if tc.src.TokenState == source.TokenWrongTopic && st.LastError != tc.src.State {
				t.Errorf("last error %q, want the source's state %q", st.LastError, tc.src.State)
			}
		})
	}
}

// healthy is a pipeline with every stream connected and the drive mounted.
func healthy(t *testing.T) (*Monitor, *fakePipeline, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	f := &fakePipeline{
		sources: []source.Stats{{Stream: "spin30", Connected: true, Since: t0}, {Stream: "spin31", Connected: true, Since: t0}},
		writer:  buffer.WriterStats{QueueCap: 100},
	}
	m := New(f, Options{ArchiveRoot: archiveRoot(t), Now: clk.Now, ClockSynced: func() bool { return true }, Logger: quiet()})
	m.sample(t0)
	m.checkArchive(t0)
	return m, f, clk
}

func TestHealthz(t *testing.T) {
	m, f, clk := healthy(t)
	h := m.Handler()
	if code, body, _ := get(t, h, "/healthz"); code != 200 || body != "recording\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	if s := m.Snapshot(); s.Health != HealthOK || len(s.Problems) != 0 || !s.Recording {
		t.Fatalf("healthy snapshot: %q %v", s.Health, s.Problems)
	}

	// Warnings keep 200: the archive gone, a stream reconnecting, the clock.
	f.set(func(f *fakePipeline) {
		f.sources[1] = source.Stats{Stream: "spin31", Since: t0, Connects: 2, Reconnects: 1, LastError: "read: EOF"}
	})
	m.opts.ClockSynced = func() bool { return false }
	if code, _, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("warnings only: %d, want 200", code)
	}
	if s := m.Snapshot(); s.Health != HealthWarning || len(s.Problems) != 2 {
		t.Errorf("warning snapshot: %q %v", s.Health, s.Problems)
	}

	// Where the clock does not matter (the demo), unsynced is no problem,
	// and the page says so in no alarming colour.
	m.opts.ClockOptional = true
	if s := m.Snapshot(); s.Health != HealthWarning || len(s.Problems) != 1 || s.ClockExpected {
		t.Errorf("clock optional: %q %v", s.Health, s.Problems)
	}
	if _, body, _ := get(t, h, "/"); !strings.Contains(body, `<span id="clock" class="l-">not synced (not needed here)</span>`) {
		t.Errorf("page clock with the clock optional:\n%s", body)
	}
	m.opts.ClockOptional = false
	if _, body, _ := get(t, h, "/"); !strings.Contains(body, `<span id="clock" class="l-warning">NOT synced</span>`) {
		t.Error("page clock: want NOT synced in the warning colour")
	}

	// The writer stalls: queue not draining for longer than StallAfter.
	f.set(func(f *fakePipeline) { f.writer.Queued = 40 })
	advance(m, clk, 5*time.Second)
	advance(m, clk, 20*time.Second)
	code, body, _ := get(t, h, "/healthz")
	if code != 503 || !strings.HasPrefix(body, "not recording\nwriter: 40 records queued and nothing committed for 25s\n") {
		t.Errorf("stalled: %d %q", code, body)
	}
	if s := m.Snapshot(); !s.Buffer.WriterStalled || s.Health != HealthFailing {
		t.Errorf("stalled snapshot: %+v", s.Buffer)
	}
	// And recovers with the next commit.
	f.set(func(f *fakePipeline) { f.writer.Queued, f.writer.Commits = 0, 1 })
	advance(m, clk, time.Second)
	if code, _, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("after recovery: %d", code)
	}

	// A stream down for longer than DownAfter is not being recorded.
	advance(m, clk, 2*time.Minute)
	code, body, _ = get(t, h, "/healthz")
	if code != 503 || !strings.Contains(body, "spin31: not connected for 2m 26s: read: EOF") {
		t.Errorf("stream down: %d %q", code, body)
	}
}

func TestArchiveCheckedPeriodically(t *testing.T) {
	m, _, clk := healthy(t)
	root := m.opts.ArchiveRoot
	if s := m.Snapshot(); !s.Archive.Available {
		t.Fatalf("archive not available at start: %+v", s.Archive)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	// Nothing changes until the next check...
	if s := m.Snapshot(); !s.Archive.Available {
		t.Fatal("the snapshot touched the disk")
	}
	m.checkArchive(clk.Advance(5 * time.Second))
	s := m.Snapshot()
	a := s.Archive
	if a.Available || a.Problem != "does not exist" || a.FreeBytes != nil || a.FilesToday != 0 ||
		a.LastError != "archive "+root+": does not exist" || !a.LastErrorAt.Equal(t0.Add(5*time.Second)) {
		t.Errorf("after removal: %+v", a)
	}
	if s.Health != HealthWarning || !s.Recording {
		t.Errorf("archive gone: health %q recording %v, want warning and recording", s.Health, s.Recording)
	}
	// Back, with the marker: available; the last error is kept.
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m.checkArchive(clk.Advance(5 * time.Second))
	if a := m.Snapshot().Archive; !a.Available || a.LastError == "" {
		t.Errorf("after return: %+v", a)
	}
	// A failed compaction is the latest error and a warning.
	m.ObserveCompaction(compactor.Result{Started: clk.Now(), Finished: clk.Now(), Err: errors.New("no space left on device")})
	if a := m.Snapshot().Archive; a.LastError != "compaction: no space left on device" {
		t.Errorf("after failed compaction: last error %q", a.LastError)
	}
}

func TestReconnectsTodayAndDrops(t *testing.T) {
	loc := time.Local
	start := time.Date(2026, 11, 26, 23, 59, 0, 0, loc)
	clk := testkit.NewClock(start)
	f := &fakePipeline{sources: []source.Stats{{Stream: "s", Connected: true, Reconnects: 7}}}
	m := New(f, Options{ArchiveRoot: t.TempDir(), Now: clk.Now, Logger: quiet()})
	m.sample(start)
	f.set(func(f *fakePipeline) { f.sources[0].Reconnects = 9; f.writer.Dropped = 4 })
	advance(m, clk, 30*time.Second)
	s := m.Snapshot()
	if got := s.Streams[0].ReconnectsToday; got != 2 {
		t.Errorf("reconnects today = %d, want 2 (since start-up)", got)
	}
	if s.Buffer.DroppedLastHour != 4 || s.Buffer.DroppedTotal != 4 || s.Health != HealthWarning {
		t.Errorf("drops: %+v health %q", s.Buffer, s.Health)
	}
	advance(m, clk, 31*time.Second) // past local midnight
	if got := m.Snapshot().Streams[0].ReconnectsToday; got != 0 {
		t.Errorf("reconnects today after midnight = %d, want 0", got)
	}
	f.set(func(f *fakePipeline) { f.sources[0].Reconnects = 10 })
	advance(m, clk, time.Second)
	if got := m.Snapshot().Streams[0].ReconnectsToday; got != 1 {
		t.Errorf("reconnects today = %d, want 1", got)
	}
	advance(m, clk, time.Hour)
	if s := m.Snapshot(); s.Buffer.DroppedLastHour != 0 || s.Buffer.DroppedTotal != 4 {
		t.Errorf("an hour later: %+v", s.Buffer)
	}
}

func TestPage(t *testing.T) {
	m, f, _, _ := scene(t)
	f.set(func(f *fakePipeline) { f.sources[1].LastError = `read: <script>alert("x")</script>` })
	m.sample(t0)
	m.checkArchive(t0)
	code, body, hdr := get(t, m.Handler(), "/")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`<div id="health" class="h-failing">FAILING</div>`,
		`<meta name="viewport"`,
		`<tr data-stream="spin30"><td class="name">spin30</td><td class="state s-connected l-ok">connected</td>`,
		`<td class="state s-token_expiring l-warning">token expiring at 2026-11-29 14:00:00 UTC (in 3d 0h)</td>`,
		`<td class="state s-token_expired l-failing">token expired at 2026-11-26 13:00:00 UTC (1h 0m ago)</td>`,
		`class="state s-error l-failing">error: dial ws://127.0.0.1:8888/ws/spin32: connection refused`,
		`<dd id="buffer-waiting">305</dd>`,
		`<dd id="archive-today">1 files, 1000 B</dd>`,
		`ok, 2 files, 4.9 KiB`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`var REFRESH =  3000 ;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `<script>alert`) {
		t.Error("page does not escape an error message")
	}
	if code, _, _ := get(t, m.Handler(), "/nope"); code != 404 {
		t.Errorf("GET /nope: %d, want 404", code)
	}
}

func TestFormat(t *testing.T) {
	for in, want := range map[time.Duration]string{0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m 1s",
		3*time.Hour + 4*time.Minute: "3h 4m", 50 * time.Hour: "2d 2h", -time.Second: "0s"} {
		if got := humanDuration(in); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB", 2 << 40: "2.0 TiB"} {
		if got := HumanBytes(in); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}
