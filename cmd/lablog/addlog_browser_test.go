package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/testing/testkit"
)

// uiPage is a lab UI's page: on load it POSTs each statement to lh with
// fetch, as today's UIs do (JSON, Basic credential), and keeps what the
// browser made of each call in window.results.
func uiPage(lh string, bodies []string) http.Handler {
	js, _ := json.Marshal(bodies)
	la := base64.StdEncoding.EncodeToString([]byte(alUser + ":" + alPass))
	page := fmt.Sprintf(`<!doctype html><title>spinner UI</title><script>
window.results = [];
(async function () {
  for (const body of %s) {
    try {
      const r = await fetch(%q + "/addLog?username=cors-student&course=ed1&hardware=spinner",
        {method: "POST", headers: {"Content-Type": "application/json", "Authorization": "Basic %s"}, body: body});
      window.results.push(String(r.status));
    } catch (e) {
      window.results.push("blocked");
    }
  }
  window.done = true;
})();
</script>`, js, lh, la)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
}

// In a real browser: a UI page on an allowed origin records every
// statement byte for byte; the same page on another origin is blocked by
// the browser (its preflight gets no CORS answer) and records nothing.
func TestAddLogFromBrowserPages(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := browser(t)
	bodies := []string{statementBodies[0], statementBodies[1], `{"verb":{"name":"session-started"},"note":"naïve café"}`}

	// The pages' servers start first: lablog must be told the allowed origin.
	var lh string
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { uiPage(lh, bodies).ServeHTTP(w, r) }))
	t.Cleanup(allowed.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { uiPage(lh, bodies).ServeHTTP(w, r) }))
	t.Cleanup(other.Close)

	dir := t.TempDir()
	d := runInProcessIn(t, dir, nil, "", addLogSection(t, dir, `"`+allowed.URL+`"`))
	testkit.Eventually(t, 10*time.Second, "the addlog address in the log", func() bool {
		m := addLogURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			lh = m[1]
		}
		return m != nil
	})

	load := func(url string) []string {
		t.Helper()
		var results []string
		pageResults(t, ctx, url, &results)
		return results
	}
	if got := load(allowed.URL); strings.Join(got, ",") != "204,204,204" {
		t.Fatalf("from the allowed origin: %v", got)
	}
	if got := load(other.URL); strings.Join(got, ",") != "blocked,blocked,blocked" {
		t.Fatalf("from another origin: %v, want every call blocked by the browser", got)
	}
	if st := d.status(t); st.AddLog == nil || st.AddLog.Total != int64(len(bodies)) {
		t.Fatalf("statements recorded: %+v, want %d", st.AddLog, len(bodies))
	}
	d.stop(t)

	if _, err := runCmd(t, "compact", "--config", filepath.Join(dir, "lablog.yaml"), "--open-hours"); err != nil {
		t.Fatal(err)
	}
	var raws []string
	err := filepath.WalkDir(d.archive, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		rows, _, err := archive.ReadRows(p)
		for _, r := range rows {
			raws = append(raws, *r.Raw)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(raws, "\n") != strings.Join(bodies, "\n") {
		t.Errorf("archived %q, want %q", raws, bodies)
	}
}

// pageResults loads url in the browser, waits for its script to set
// window.done and decodes window.results into v.
func pageResults(t *testing.T, ctx context.Context, url string, v any) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the page's calls to finish", func() bool {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.done === true`))
		if err != nil || !done {
			return false
		}
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.results)`))
		return err == nil && json.Unmarshal([]byte(raw), v) == nil
	})
}
