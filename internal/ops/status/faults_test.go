package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/led"
	"github.com/practable/lablog/internal/testing/testkit"
)

// withFaults is a healthy monitor whose pipeline has a fault store on a file,
// on the monitor's clock.
func withFaults(t *testing.T) (*Monitor, *fault.Store, *testkit.Clock, string) {
	t.Helper()
	m, f, clk := healthy(t)
	path := filepath.Join(t.TempDir(), fault.FileName)
	store := fault.Open(path, fault.Options{Now: clk.Now, Logger: quiet()})
	f.set(func(f *fakePipeline) { f.faults = store })
	return m, store, clk, path
}

func post(t *testing.T, h http.Handler, path string, hdr map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	body, _ := io.ReadAll(rr.Result().Body)
	return rr.Code, string(body)
}

func TestFaultsInHealthAndHealthz(t *testing.T) {
	m, store, clk, _ := withFaults(t)
	h := m.Handler()

	// A quarantine is a warning: still recording, 200, but the reason shows.
	store.Report(fault.BufferQuarantined, "/data/buffer.db.corrupt-20261126T140000", 1)
	code, body, _ := get(t, h, "/healthz")
	if code != 200 || body != "recording\nwarning: buffer_quarantined: The buffer file was corrupt and was set aside (/data/buffer.db.corrupt-20261126T140000)\n" {
		t.Errorf("quarantine: %d %q", code, body)
	}
	if s := m.Snapshot(); s.Health != HealthWarning || !s.Recording || len(s.Faults) != 1 || len(s.Problems) != 1 {
		t.Errorf("quarantine snapshot: %q %v %+v", s.Health, s.Recording, s.Faults)
	}
	if got := LEDState(m.Snapshot()); got != led.Solid {
		t.Errorf("LED with a quarantine: %v, want solid", got)
	}

	// Damaged records and an identity conflict: warnings too.
	store.Report(fault.RecordsSetAside, "buffer.db.set-aside/spin30-1.bin", 3)
	store.Report(fault.IdentityConflict, "archive/stream=spin30/date=2026-11-26/x.parquet", 1)
	if s := m.Snapshot(); s.Health != HealthWarning || !s.Recording || len(s.Faults) != 3 {
		t.Errorf("three warnings: %q %v %+v", s.Health, s.Recording, s.Faults)
	}

	// Frames refused just now: data is being lost, FAILING and 503.
	clk.Advance(time.Minute)
	store.Report(fault.FramesRefused, "buffer at max_size 1.0 GiB", 250)
	code, body, _ = get(t, h, "/healthz")
	if code != 503 || !strings.HasPrefix(body, "not recording\nframes_refused: 250 frames were refused: the buffer was full (buffer at max_size 1.0 GiB)\nwarning: ") ||
		!strings.Contains(body, "\nwarning: buffer_quarantined: ") || !strings.Contains(body, "\nwarning: records_set_aside: 3 damaged records ") {
		t.Errorf("frames refused: %d %q", code, body)
	}
	s := m.Snapshot()
	if s.Health != HealthFailing || s.Recording || s.Faults[0].Kind != "frames_refused" || s.Faults[0].Level != HealthFailing {
		t.Errorf("frames refused snapshot: %q %v %+v", s.Health, s.Recording, s.Faults)
	}
	if got := LEDState(s); got != led.Blink {
		t.Errorf("LED with frames refused: %v, want fast blink", got)
	}

	// A minute after the last refusal it is a warning until acknowledged.
	clk.Advance(time.Minute)
	code, body, _ = get(t, h, "/healthz")
	if code != 200 || !strings.Contains(body, "warning: frames_refused: 250 frames were refused") {
		t.Errorf("a minute after refusals: %d %q", code, body)
	}
	if s := m.Snapshot(); s.Health != HealthWarning || len(s.Faults) != 4 {
		t.Errorf("a minute after refusals: %q %+v", s.Health, s.Faults)
	}

	// 24 hours after the last report every fault has expired, unacknowledged.
	clk.Advance(24*time.Hour - 2*time.Minute)
	if s := m.Snapshot(); len(s.Faults) != 1 || s.Faults[0].Kind != "frames_refused" {
		t.Errorf("24 h after the first three: %+v", s.Faults)
	}
	clk.Advance(2 * time.Minute)
	if code, body, _ := get(t, h, "/healthz"); code != 200 || body != "recording\n" {
		t.Errorf("after expiry: %d %q", code, body)
	}
	if s := m.Snapshot(); s.Health != HealthOK || len(s.Faults) != 0 || LEDState(s) != led.Heartbeat {
		t.Errorf("after expiry: %q %+v", s.Health, s.Faults)
	}
}

func TestFaultAckEndpoint(t *testing.T) {
	m, store, clk, path := withFaults(t)
	h := m.Handler()
	store.Report(fault.BufferQuarantined, "/data/buffer.db.corrupt-1", 1)

	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(method, "/api/faults/ack", nil))
		if rr.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /api/faults/ack: %d, want 405", method, rr.Code)
		}
	}
	// Another site's page cannot acknowledge (CSRF).
	if code, _ := post(t, h, "/api/faults/ack", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
	if len(m.Snapshot().Faults) != 1 {
		t.Fatal("a refused request acknowledged the faults")
	}

	code, body := post(t, h, "/api/faults/ack", map[string]string{"Sec-Fetch-Site": "same-origin"})
	if code != 200 || body != "{\n  \"faults\": []\n}\n" {
		t.Errorf("POST ack: %d %q", code, body)
	}
	if s := m.Snapshot(); len(s.Faults) != 0 || s.Health != HealthOK {
		t.Errorf("after ack: %q %+v", s.Health, s.Faults)
	}
	// The ack is on disk: a restart does not bring the fault back.
	if got := fault.Open(path, fault.Options{Logger: quiet()}).Active(clk.Now()); len(got) != 0 {
		t.Errorf("ack not saved: %+v", got)
	}

	// A fault reported after the ack is active again, and the answer of a
	// later ack lists what is still active... nothing, here.
	clk.Advance(time.Minute)
	store.Report(fault.BufferQuarantined, "/data/buffer.db.corrupt-2", 1)
	s := m.Snapshot()
	if len(s.Faults) != 1 || s.Faults[0].Detail != "/data/buffer.db.corrupt-2" || s.Faults[0].Count != 2 || !s.Faults[0].First.Equal(t0) {
		t.Errorf("re-reported: %+v", s.Faults)
	}
	code, body = post(t, h, "/api/faults/ack", nil)
	var doc struct{ Faults []FaultStatus }
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil || len(doc.Faults) != 0 {
		t.Errorf("second ack: %d %v %q", code, err, body)
	}

	// When the record cannot be saved the ack still holds for now, and
	// the answer says it was not saved.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	store.Report(fault.IdentityConflict, "x.parquet", 1)
	code, body = post(t, h, "/api/faults/ack", nil)
	if code != 500 || !strings.Contains(body, "not saved") {
		t.Errorf("ack without a folder: %d %q", code, body)
	}
	if s := m.Snapshot(); len(s.Faults) != 0 {
		t.Errorf("ack not held in memory: %+v", s.Faults)
	}
}

func TestFaultsOnPage(t *testing.T) {
	m, store, clk, _ := withFaults(t)
	h := m.Handler()
	_, body, _ := get(t, h, "/")
	if !strings.Contains(body, `<section id="faults-section" class="faults" data-level="" hidden>`) {
		t.Error("the faults section is not hidden without faults")
	}

	store.Report(fault.BufferQuarantined, "/data/<b>buffer.db.corrupt-1", 1)
	clk.Advance(90 * time.Second)
	store.Report(fault.BufferQuarantined, "/data/<b>buffer.db.corrupt-2", 1)
	store.Report(fault.FramesRefused, "", 1)
	clk.Advance(30 * time.Second)
	code, body, _ := get(t, h, "/")
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	last := t0.Add(90 * time.Second).UTC().Format(time.DateTime) // the page's times are UTC
	for _, want := range []string{
		`<section id="faults-section" class="faults" data-level="failing">`,
		`<button id="faults-ack" type="button">Acknowledge</button>`,
		// Failing first.
		`<li class="l-failing" data-kind="frames_refused"><b>1 frame was refused: the buffer was full</b>`,
		`<li class="l-warning" data-kind="buffer_quarantined"><b>The buffer file was corrupt and was set aside (2 times)</b> ` +
			`<span class="when">last ` + last + ` (30s ago), first ` + t0.UTC().Format(time.DateTime) + `</span>`,
		`The damaged file was kept at /data/&lt;b&gt;buffer.db.corrupt-2 for inspection; recording continued on a fresh buffer.`,
		`fetch("api/faults/ack", {method: "POST"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Index(body, `id="faults-section"`) > strings.Index(body, `<h2>Streams`) {
		t.Error("the faults section is not above the streams")
	}
}

func TestFaultMetrics(t *testing.T) {
	m, store, clk, _ := withFaults(t)
	store.Report(fault.RecordsSetAside, "a", 3)
	store.Report(fault.RecordsSetAside, "b", 4)
	store.Report(fault.FramesRefused, "c", 10)
	if err := store.Ack(clk.Now()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	store.Report(fault.BufferQuarantined, "q", 1)

	fams := scrape(t, m)
	byKind := func(name, kind string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
		for _, met := range f.Metric {
			for _, l := range met.Label {
				if l.GetName() == "kind" && l.GetValue() == kind {
					if met.Counter != nil {
						return met.Counter.GetValue(), true
					}
					return met.Gauge.GetValue(), true
				}
			}
		}
		return 0, false
	}
	if fams["lablog_faults_active"].GetType() != dto.MetricType_GAUGE || fams["lablog_fault_events_total"].GetType() != dto.MetricType_COUNTER {
		t.Errorf("types: %v %v", fams["lablog_faults_active"].GetType(), fams["lablog_fault_events_total"].GetType())
	}
	for _, tc := range []struct {
		kind           string
		active, events float64
	}{
		{"buffer_quarantined", 1, 1},
		{"records_set_aside", 0, 7}, // acknowledged: not active, still counted
		{"frames_refused", 0, 10},
		{"identity_conflict", 0, 0}, // never happened: present, zero
	} {
		a, ok1 := byKind("lablog_faults_active", tc.kind)
		e, ok2 := byKind("lablog_fault_events_total", tc.kind)
		if !ok1 || !ok2 || a != tc.active || e != tc.events {
			t.Errorf("%s: active %v (%v) events %v (%v), want %v %v", tc.kind, a, ok1, e, ok2, tc.active, tc.events)
		}
	}
}

func TestNoFaultsIsAnEmptyList(t *testing.T) {
	m, _, _ := healthy(t) // the fake's store is nil
	_, body, _ := get(t, m.Handler(), "/api/status")
	if !strings.Contains(body, `"faults": []`) {
		t.Errorf("no faults should be [], got:\n%s", body)
	}
}
