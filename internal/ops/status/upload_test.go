package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/cloud/upload"
)

func TestUploadOffIsNull(t *testing.T) {
	m, _, _ := healthy(t)
	_, body, _ := get(t, m.Handler(), "/api/status")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if v, ok := doc["upload"]; !ok || v != nil {
		t.Errorf("upload = %v (present %v), want null", v, ok)
	}
	_, page, _ := get(t, m.Handler(), "/")
	if !strings.Contains(page, `<section id="upload-section" hidden>`) {
		t.Error("the upload section is not hidden when upload is off")
	}
	if _, ok := scrape(t, m)["lablog_upload_files_waiting"]; ok {
		t.Error("upload metrics without upload")
	}
}

func TestUploadShownEverywhere(t *testing.T) {
	m, f, _ := healthy(t)
	h := m.Handler()
	oldest := t0.Add(-2 * time.Hour).Truncate(time.Hour)
	st := upload.Stats{State: upload.StateRetrying, Endpoint: "https://s3.example.org", Target: "s3://lab/fleet/site=bristol/",
		FilesWaiting: 3, BytesWaiting: 3 << 20, OldestWaiting: oldest, FilesUploaded: 40, FilesFound: 2, BytesUploaded: 50 << 20,
		LastUploadAt: t0.Add(-time.Minute), BytesPerSecond: 2048, Failures: 4,
		LastError: "upload fleet/...: server unreachable: dial tcp: connection refused", LastErrorAt: t0.Add(-10 * time.Second),
		NextAttemptAt: t0.Add(20 * time.Second)}
	f.set(func(f *fakePipeline) { f.upload = &st })

	s := m.Snapshot()
	u := s.Upload
	if u == nil || u.State != "retrying" || u.FilesWaiting != 3 || u.BytesWaiting != 3<<20 || !u.OldestWaiting.Equal(oldest) ||
		u.FilesUploaded != 40 || u.FilesFound != 2 || u.Failures != 4 || u.BytesPerSecond != 2048 || u.NextAttemptAt == nil {
		t.Fatalf("upload = %+v", u)
	}
	// Failing uploads are a warning: recording goes on.
	wantProblem := "upload failing (4 attempts): upload fleet/...: server unreachable: dial tcp: connection refused; " +
		"3 files (3.0 MiB) waiting, the oldest from " + oldest.UTC().Format("2006-01-02 15:04 UTC")
	if s.Health != HealthWarning || !s.Recording || len(s.Problems) != 1 || s.Problems[0].Message != wantProblem {
		t.Errorf("health %q problems %+v", s.Health, s.Problems)
	}
	if code, body, _ := get(t, h, "/healthz"); code != 200 || body != "recording\nwarning: "+wantProblem+"\n" {
		t.Errorf("/healthz %d %q", code, body)
	}
	_, page, _ := get(t, h, "/")
	for _, want := range []string{`<section id="upload-section">`, "s3://lab/fleet/site=bristol/ at https://s3.example.org",
		`<dd id="upload-state" class="l-warning">retrying with backoff after 4 failed attempts</dd>`, "3 files (3.0 MiB) waiting", "40 files, 50.0 MiB since start (and 2 found there already)",
		"2.0 KiB/s over the last minute", "server unreachable"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	fams := scrape(t, m)
	for name, want := range map[string]float64{"lablog_upload_files_waiting": 3, "lablog_upload_bytes_waiting": 3 << 20,
		"lablog_upload_oldest_waiting_timestamp_seconds": float64(oldest.Unix()), "lablog_upload_failures": 4,
		"lablog_upload_bytes_total": 50 << 20, "lablog_upload_conflicts": 0} {
		if got, ok := value(t, fams, name, ""); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	var up, found float64
	for _, mm := range fams["lablog_upload_files_total"].GetMetric() {
		switch mm.GetLabel()[0].GetValue() {
		case "uploaded":
			up = mm.GetCounter().GetValue()
		case "found":
			found = mm.GetCounter().GetValue()
		}
	}
	if up != 40 || found != 2 {
		t.Errorf("lablog_upload_files_total uploaded %v found %v", up, found)
	}

	// Waiting for the clock, and a lag without errors, are warnings too.
	st2 := upload.Stats{State: upload.StateWaitingForClock, FilesWaiting: 1, BytesWaiting: 10, OldestWaiting: oldest}
	f.set(func(f *fakePipeline) { f.upload = &st2 })
	if p := m.Snapshot().Problems; len(p) != 1 || !strings.HasPrefix(p[0].Message, "upload waiting for the system clock to be synchronised: 1 file (10 B) waiting") {
		t.Errorf("problems %+v", p)
	}
	st3 := upload.Stats{State: upload.StateIdle, FilesWaiting: 1, BytesWaiting: 10, OldestWaiting: t0.Add(-5 * time.Hour)}
	f.set(func(f *fakePipeline) { f.upload = &st3 })
	if p := m.Snapshot().Problems; len(p) != 1 || !strings.HasPrefix(p[0].Message, "upload lagging: 1 file (10 B) waiting") {
		t.Errorf("problems %+v", p)
	}
	st4 := upload.Stats{State: upload.StateIdle}
	f.set(func(f *fakePipeline) { f.upload = &st4 })
	if s := m.Snapshot(); s.Health != HealthOK {
		t.Errorf("all uploaded: %q %+v", s.Health, s.Problems)
	}
}
