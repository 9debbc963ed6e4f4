package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	dto "github.com/prometheus/client_model/go"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/testing/testkit"
)

// startBinary runs the real binary on cfgPath and returns it with its log
// and a daemon handle on its status server, once the server is up.
func startBinary(t *testing.T, cfgPath string) (*exec.Cmd, *daemon) {
	t.Helper()
	return startBinaryEnv(t, cfgPath, nil)
}

// stopBinary ends the daemon with SIGTERM, as systemd does, and checks it
// exits cleanly.
func stopBinary(t *testing.T, cmd *exec.Cmd, d *daemon) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon exit: %v\n%s", err, d.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not stop within 30 s\n%s", d.logs)
	}
}

func faultOf(s status.Snapshot, kind fault.Kind) *status.FaultStatus {
	for i, f := range s.Faults {
		if f.Kind == string(kind) {
			return &s.Faults[i]
		}
	}
	return nil
}

func postAck(t *testing.T, d *daemon) []status.FaultStatus {
	t.Helper()
	resp, err := http.Post(d.url+"/api/faults/ack", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Faults []status.FaultStatus `json:"faults"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); resp.StatusCode != 200 || err != nil {
		t.Fatalf("POST /api/faults/ack: %d %v", resp.StatusCode, err)
	}
	return doc.Faults
}

// A corrupt buffer is quarantined at start; the quarantine shows on every
// status surface of the real binary, survives a restart, and goes away when
// acknowledged (and stays away after another restart).
func TestQuarantineShownUntilAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; not in -short")
	}
	host := newTestHost(t)
	cfgPath, bufPath := daemonConfig(t, host.URL())
	if err := os.WriteFile(bufPath, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd, d := startBinary(t, cfgPath)
	q, _ := filepath.Glob(bufPath + ".corrupt-*")
	if len(q) != 1 {
		t.Fatalf("quarantined files: %v", q)
	}
	s := d.status(t)
	f := faultOf(s, fault.BufferQuarantined)
	if f == nil || f.Detail != q[0] || f.Count != 1 || f.Level != status.HealthWarning || !strings.Contains(f.Action, q[0]) {
		t.Fatalf("/api/status faults: %+v", s.Faults)
	}
	if s.Health == status.HealthOK || !s.Recording {
		t.Errorf("health %q recording %v with a quarantine, want warning and recording", s.Health, s.Recording)
	}
	if code, body := d.get(t, "/healthz"); code != 200 || !strings.Contains(string(body), "warning: buffer_quarantined: ") ||
		!strings.Contains(string(body), q[0]) {
		t.Errorf("/healthz: %d %q", code, body)
	}
	fams := scrapeMetrics(t, d)
	if got := kindValue(fams, "lablog_faults_active", "buffer_quarantined"); got != 1 {
		t.Errorf("lablog_faults_active{kind=buffer_quarantined} = %v", got)
	}
	if got := kindValue(fams, "lablog_fault_events_total", "buffer_quarantined"); got != 1 {
		t.Errorf("lablog_fault_events_total{kind=buffer_quarantined} = %v", got)
	}
	if !strings.Contains(d.logs.String(), "BUFFER WAS CORRUPT") {
		t.Errorf("the quarantine is no longer logged:\n%s", d.logs)
	}
	stopBinary(t, cmd, d)
	if _, err := os.Stat(filepath.Join(filepath.Dir(bufPath), fault.FileName)); err != nil {
		t.Fatalf("no fault record next to the buffer: %v", err)
	}

	// Restarted on the fresh (healthy) buffer: the quarantine is remembered.
	cmd, d = startBinary(t, cfgPath)
	s = d.status(t)
	if f := faultOf(s, fault.BufferQuarantined); f == nil || f.Detail != q[0] || f.Count != 1 {
		t.Fatalf("after a restart: faults %+v", s.Faults)
	}
	if q2, _ := filepath.Glob(bufPath + ".corrupt-*"); len(q2) != 1 {
		t.Fatalf("the fresh buffer was quarantined too: %v", q2)
	}

	// Acknowledged: gone from every surface.
	if left := postAck(t, d); len(left) != 0 {
		t.Errorf("ack answered %+v, want no faults left", left)
	}
	if s := d.status(t); len(s.Faults) != 0 || mentions(s.Problems, "buffer_quarantined") {
		t.Errorf("after ack: faults %+v, problems %+v", s.Faults, s.Problems)
	}
	if code, body := d.get(t, "/healthz"); code != 200 || strings.Contains(string(body), "buffer_quarantined") {
		t.Errorf("/healthz after ack: %d %q", code, body)
	}
	if got := kindValue(scrapeMetrics(t, d), "lablog_faults_active", "buffer_quarantined"); got != 0 {
		t.Errorf("lablog_faults_active{kind=buffer_quarantined} after ack = %v", got)
	}
	stopBinary(t, cmd, d)

	// And the acknowledgement survives a restart too.
	cmd, d = startBinary(t, cfgPath)
	if s := d.status(t); len(s.Faults) != 0 {
		t.Errorf("after ack and restart: %+v", s.Faults)
	}
	stopBinary(t, cmd, d)
}

func mentions(ps []status.Problem, word string) bool {
	for _, p := range ps {
		if strings.Contains(p.Message, word) {
			return true
		}
	}
	return false
}

// kindValue is a metric's value by its kind label; -1 when absent.
func kindValue(fams map[string]*dto.MetricFamily, name, kind string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "kind" && l.GetValue() == kind {
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

// faultsOnPage is the faults section as the browser shows it.
type faultsOnPage struct {
	Visible bool     `json:"visible"`
	Kinds   []string `json:"kinds"`
	Text    string   `json:"text"`
	Health  string   `json:"health"`
}

const readFaults = `JSON.stringify({
  visible: !document.getElementById("faults-section").hidden && document.getElementById("faults-section").offsetHeight > 0,
  kinds: Array.from(document.querySelectorAll("#faults li")).map(function (li) { return li.dataset.kind; }),
  text: document.getElementById("faults").textContent,
  health: document.getElementById("health").textContent
})`

// In a real browser: a quarantine shows in the Faults section, and
// clicking Acknowledge clears it from the page and from the API.
func TestFaultsAcknowledgedInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := browser(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "buffer.db"), bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	d := runInProcessIn(t, dir, []string{"spin30"}, "", "")
	q, _ := filepath.Glob(filepath.Join(dir, "buffer.db.corrupt-*"))
	if len(q) != 1 {
		t.Fatalf("quarantined files: %v", q)
	}

	read := func() faultsOnPage {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readFaults))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		var p faultsOnPage
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	await := func(what string, cond func(faultsOnPage) bool) faultsOnPage {
		t.Helper()
		var p faultsOnPage
		testkit.Eventually(t, 30*time.Second, what, func() bool { p = read(); return cond(p) })
		return p
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), chromedp.WaitVisible(chromedp.ID("health"))); err != nil {
		t.Fatal(err)
	}
	p := await("the quarantine in the Faults section", func(p faultsOnPage) bool {
		return p.Visible && len(p.Kinds) == 1 && p.Kinds[0] == "buffer_quarantined"
	})
	if !strings.Contains(p.Text, "kept at "+q[0]+" for inspection; recording continued on a fresh buffer") {
		t.Errorf("the fault does not say what to do: %q", p.Text)
	}
	if p.Health != "WARNING" {
		t.Errorf("health %q with a quarantine, want WARNING", p.Health)
	}
	// At phone width the reason wraps in full, up to its cause (the path),
	// as /api/status words it.
	reasons, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#problems li")).map(function (li) { return li.innerText; })`))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, pr := range d.status(t).Problems {
		want = append(want, pr.Message)
	}
	if !slices.Contains(reasons, "buffer_quarantined: The buffer file was corrupt and was set aside ("+q[0]+")") {
		t.Errorf("the page's reasons %q, want the quarantine's in full among %q", reasons, want)
	}
	for _, c := range contradictions(t, ctx) {
		t.Errorf("at 390 px with a fault: %s", c)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("faults-ack"))); err != nil {
		t.Fatal(err)
	}
	await("the Faults section gone after Acknowledge", func(p faultsOnPage) bool { return !p.Visible && len(p.Kinds) == 0 })
	if s := d.status(t); len(s.Faults) != 0 {
		t.Errorf("after Acknowledge the API still lists %+v", s.Faults)
	}
	// And it stays gone across the page's own refreshes.
	updated := func() string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("updated").textContent`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := updated()
	testkit.Eventually(t, 30*time.Second, "a refresh of the page", func() bool { return updated() != before })
	if p := read(); p.Visible || len(p.Kinds) != 0 {
		t.Errorf("the fault came back after a refresh: %+v", p)
	}
}
