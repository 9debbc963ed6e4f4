package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/retention"
	"github.com/practable/lablog/internal/record/buffer"
)

func TestRetentionOffIsNullAndHidden(t *testing.T) {
	m, _, _ := healthy(t)
	_, body, _ := get(t, m.Handler(), "/api/status")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if v, ok := doc["retention"]; !ok || v != nil {
		t.Errorf("retention = %v (present %v), want null", v, ok)
	}
	if _, page, _ := get(t, m.Handler(), "/"); !strings.Contains(page, `<section id="retention-section" hidden>`) {
		t.Error("the retention section is not hidden with keep_days 0")
	}
	if _, ok := scrape(t, m)["lablog_retention_files_removed_total"]; ok {
		t.Error("retention metrics with keep_days 0")
	}
}

func TestRetentionShownEverywhere(t *testing.T) {
	oldest := time.Date(2026, 10, 1, 13, 0, 0, 0, time.UTC)
	st := retention.Stats{KeepDays: 30, FilesRemoved: 5, BytesRemoved: 3 << 20, OldestKept: oldest, FilesKept: 700,
		Held: 2, LastSweepAt: t0.Add(-time.Minute), LastError: "retention: remove x: permission denied"}
	m := New(&fakePipeline{writer: buffer.WriterStats{QueueCap: 100}}, Options{ArchiveRoot: archiveRoot(t), Now: func() time.Time { return t0 },
		ClockSynced: func() bool { return true }, Logger: quiet(), Retention: func() retention.Stats { return st }})
	r := m.Snapshot().Retention
	if r == nil || r.KeepDays != 30 || r.FilesRemoved != 5 || r.BytesRemoved != 3<<20 || !r.OldestKept.Equal(oldest) ||
		r.FilesKept != 700 || r.Held != 2 || r.LastError == "" {
		t.Fatalf("retention = %+v", r)
	}
	_, page, _ := get(t, m.Handler(), "/")
	for _, want := range []string{`<section id="retention-section">`, "files are removed from the drive 30 days after their hour",
		"5 files (3.0 MiB) since start", "700 files, the oldest from 2026-10-01 13:00 UTC; 2 past keep_days held until uploaded",
		`<dd id="retention-error" class="l-warning">retention: remove x: permission denied`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	fams := scrape(t, m)
	for name, want := range map[string]float64{"lablog_retention_files_removed_total": 5, "lablog_retention_bytes_removed_total": 3 << 20,
		"lablog_retention_oldest_kept_timestamp_seconds": float64(oldest.Unix()), "lablog_retention_files_held": 2} {
		if got, ok := value(t, fams, name, ""); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
}

func TestPrivacyShown(t *testing.T) {
	m, _, _ := healthy(t)
	if s := m.Snapshot(); s.Privacy != nil {
		t.Errorf("privacy %+v without pseudonymising", s.Privacy)
	}
	if _, page, _ := get(t, m.Handler(), "/"); !strings.Contains(page, `<section id="privacy-section" hidden>`) {
		t.Error("the privacy section is not hidden")
	}
	m = New(&fakePipeline{writer: buffer.WriterStats{QueueCap: 100}}, Options{ArchiveRoot: archiveRoot(t), Now: func() time.Time { return t0 },
		ClockSynced: func() bool { return true }, Logger: quiet(), PseudonymKeyID: "0a1b2c3d4e5f"})
	if p := m.Snapshot().Privacy; p == nil || !p.Pseudonymised || p.KeyID != "0a1b2c3d4e5f" {
		t.Errorf("privacy %+v", p)
	}
	if _, page, _ := get(t, m.Handler(), "/"); !strings.Contains(page, `<dd id="privacy-ids">pseudonymised at ingest, key 0a1b2c3d4e5f</dd>`) {
		t.Error("the page does not say ids are pseudonymised")
	}
}
