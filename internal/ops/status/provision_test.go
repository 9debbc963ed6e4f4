package status

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/practable/lablog/internal/ops/relay"
)

// provisionGauge is lablog_provision_state{stream,state}, if scraped.
func provisionGauge(fams map[string]*dto.MetricFamily, stream, state string) (float64, bool) {
	f := fams["lablog_provision_state"]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		var s, st string
		for _, l := range m.Label {
			switch l.GetName() {
			case "stream":
				s = l.GetValue()
			case "state":
				st = l.GetValue()
			}
		}
		if s == stream && st == state {
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// Each provisioned stream's rule state shows in /api/status, on the page,
// in /metrics, and as a problem when the host cannot take rules.
func TestProvisionStateShown(t *testing.T) {
	m, f, _, _ := scene(t)
	detail := `relay host http://127.0.0.1:8888: healthcheck answered "<html>", want "ok": unexpected answer`
	f.set(func(f *fakePipeline) {
		f.provision = []relay.ProvisionStats{{Host: "http://127.0.0.1:8888", Streams: map[string]relay.StreamProvision{
			"spin30": {State: relay.ProvisionRulePosted},
			"spin31": {State: relay.ProvisionHostUnexpected, Detail: detail},
			"spin32": {State: relay.ProvisionHostUnreachable, Detail: "dial tcp: connection refused"},
		}}}
	})
	m.sample(t0)
	m.checkArchive(t0)
	s := m.Snapshot()
	for _, tc := range []struct{ stream, state, detail, problem string }{
		{"spin30", relay.ProvisionRulePosted, "", ""},
		{"spin31", relay.ProvisionHostUnexpected, detail, "failing spin31: no relay host rule: the host answers unexpectedly: " + detail},
		{"spin32", relay.ProvisionHostUnreachable, "dial tcp: connection refused", "warning spin32: no relay host rule: the host is unreachable: dial tcp: connection refused"},
		{"pend00", "", "", ""},
	} {
		var st StreamStatus
		for _, x := range s.Streams {
			if x.Name == tc.stream {
				st = x
			}
		}
		if st.Provision != tc.state || st.ProvisionError != tc.detail {
			t.Errorf("%s: provision %q %q, want %q %q", tc.stream, st.Provision, st.ProvisionError, tc.state, tc.detail)
		}
		found := tc.problem == ""
		for _, p := range s.Problems {
			if strings.Contains(p.Message, "relay host rule") && strings.HasPrefix(p.Message, tc.stream+":") {
				found = p.Level+" "+p.Message == tc.problem
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want %q", tc.stream, s.Problems, tc.problem)
		}
		fams := scrape(t, m)
		for _, state := range provisionStates {
			v, ok := provisionGauge(fams, tc.stream, state)
			if want := b2f(state == tc.state); ok != (tc.state != "") || v != want {
				t.Errorf("%s: lablog_provision_state{state=%q} = %v (present %v)", tc.stream, state, v, ok)
			}
		}
	}
	_, body, _ := get(t, m.Handler(), "/")
	for _, want := range []string{
		`<th>Relay host rule</th>`,
		`<td class="rule r-rule_posted l-ok" data-label="rule">posted</td>`,
		`<td class="rule r-host_unexpected l-failing" data-label="rule">host answers unexpectedly</td>`,
		`<td class="rule r-host_unreachable l-warning" data-label="rule">host unreachable</td>`,
		`<td class="rule r- l-" data-label="rule">not kept by lablog</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
