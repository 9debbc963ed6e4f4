package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/analytics/dashboard"
	"github.com/practable/lablog/internal/testing/testkit"
)

// dashboardPage is a student's dashboard: on load it GETs every endpoint
// of th for one student, as the dashboards do (simple cross-origin GETs,
// no credential), and keeps each answer's text, or "blocked", in
// window.results.
func dashboardPage(th string) http.Handler {
	paths, _ := json.Marshal(dashboard.Paths)
	page := fmt.Sprintf(`<!doctype html><title>dashboard</title><script>
window.results = {};
(async function () {
  for (const path of %s) {
    try {
      const r = await fetch(%q + path + "?username=dash-student&course=ed1&hardware=spinner&taskcode=spinner-ed1-1-core");
      window.results[path] = r.status + " " + await r.text();
    } catch (e) {
      window.results[path] = "blocked";
    }
  }
  window.done = true;
})();
</script>`, paths, th)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
}

// In a real browser: a dashboard page on an allowed origin gets every
// answer for a student whose statements lablog recorded; the same page on
// another origin gets none (the browser blocks the answers).
func TestDashboardsInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := browser(t)
	var th string
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { dashboardPage(th).ServeHTTP(w, r) }))
	t.Cleanup(allowed.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { dashboardPage(th).ServeHTTP(w, r) }))
	t.Cleanup(other.Close)

	dir := t.TempDir()
	d := runInProcessIn(t, dir, nil, "", addLogSection(t, dir, `"`+allowed.URL+`"`)+"\nanalytics: {time_zone: UTC}")
	testkit.Eventually(t, 10*time.Second, "the addlog address in the log", func() bool {
		m := addLogURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			th = m[1]
		}
		return m != nil
	})
	started := time.Date(2026, 12, 1, 10, 15, 0, 0, time.UTC).UnixMilli()
	bodies := []string{
		fmt.Sprintf(`{"timestamp":%d,"actor":{"id":"dash-student"},"verb":{"name":"session-started"}}`, started),
		fmt.Sprintf(`{"timestamp":%d,"actor":{"id":"dash-student"},"verb":{"name":"clicked"},"context":{"graph_node":"voltage_step"}}`, started+1000),
		fmt.Sprintf(`{"timestamp":%d,"actor":{"id":"dash-student"},"verb":{"name":"clicked"},"context":{"graph_node":"speed_ramp"}}`, started+2000),
	}
	for _, b := range bodies {
		if code := postStatement(t, th, "username=dash-student&course=ed1&hardware=spinner", b); code != http.StatusNoContent {
			t.Fatalf("statement: %d", code)
		}
	}

	dashGet(t, th, "/usageStats?username=dash-student&course=ed1&hardware=spinner") // the store is counting
	load := func(url string) map[string]string {
		t.Helper()
		var results map[string]string
		pageResults(t, ctx, url, &results)
		return results
	}
	got := load(allowed.URL)
	want := map[string]string{
		"/studentGraph":    `"from":"voltage_step","to":"speed_ramp","label":"1"`,
		"/comparisonGraph": `"nodes":[]`,
		"/otherIndicators": `{"indicators":{}}`,
		"/taskCompletion":  `{"task_dissimilarity":{}}`,
		"/usageStats":      `"session_times":["10:15"]`,
	}
	for path, part := range want {
		if !strings.HasPrefix(got[path], "200 ") || !strings.Contains(got[path], part) {
			t.Errorf("%s from the allowed origin: %q, want 200 and %s", path, got[path], part)
		}
	}
	for path, answer := range load(other.URL) {
		if answer != "blocked" {
			t.Errorf("%s from another origin: %q, want blocked by the browser", path, answer)
		}
	}
}
