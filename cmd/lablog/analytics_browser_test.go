package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/practable/lablog/internal/platform/waitfor"
)

// pageEvents records what a page reports: console errors and warnings,
// exceptions, browser log errors, and every URL it requests.
type pageEvents struct {
	mu       sync.Mutex
	changed  waitfor.Signal
	problems []string
	requests []string
}

func (p *pageEvents) add(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changed.Notify()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value))
			}
			p.problems = append(p.problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		p.problems = append(p.problems, "exception: "+e.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
			p.problems = append(p.problems, "log "+string(e.Entry.Level)+": "+e.Entry.Text+" "+e.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, e.Request.URL)
	}
}

func (p *pageEvents) snapshot() (problems, requests []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...), append([]string(nil), p.requests...)
}

// The report loads in headless Chromium with no console errors and no
// request beyond its own file, and shows every student's graph.
func TestAnalyticsReportInBrowser(t *testing.T) {
	ctx := browser(t)
	logs, graphs := laFixture(t, "comparison_logs"), laFixture(t, "comparison_graphs")
	// Every expert log as a user of its own, plus glued and foreign commands.
	var jsonl strings.Builder
	files, _ := filepath.Glob(filepath.Join(logs, "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		user := strings.TrimSuffix(filepath.Base(f), ".json")
		jsonl.WriteString(strings.ReplaceAll(string(data), `"testuser"`, `"`+user+`"`) + "\n")
	}
	jsonl.WriteString(`{"user":"<b>odd & user</b>","t":5,"exp":"spinner","course":"engdes1","type":"log","payload":{"log":"voltage"}}{"user":"<b>odd & user</b>","t":6,"exp":"spinner","course":"engdes1","type":"log","payload":{"log":"start"}}` + "\n")
	jsonl.WriteString(`{"user":"<b>odd & user</b>","t":7,"exp":"spinner","course":"engdes1","type":"log","payload":{"log":"voltage"}}` + "\n")
	dir := t.TempDir()
	in := filepath.Join(dir, "frames.jsonl")
	if err := os.WriteFile(in, []byte(jsonl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if msg, err := runCmd(t, "analytics", "--jsonl", in, "--compare", graphs, "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}

	var ev pageEvents
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, ev.add); err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.Join(out, "report.html")
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("article svg"))); err != nil {
		t.Fatal(err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
  svgs: Array.from(document.querySelectorAll("article svg")).map(function (s) {
    var r = s.getBoundingClientRect();
    return {w: r.width, h: r.height, edges: s.querySelectorAll("path[marker-end]").length, labels: s.querySelectorAll("text.w").length};
  }),
  titles: Array.from(document.querySelectorAll("article h3")).map(function (h) { return h.textContent; }),
  rows: document.querySelectorAll("h2 + table tr").length,
  groups: Array.from(document.querySelectorAll("h2")).map(function (h) { return h.textContent; }),
  overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  bold: document.querySelectorAll("article h3 b").length
})`))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		SVGs []struct {
			W, H          float64
			Edges, Labels int
		} `json:"svgs"`
		Titles   []string `json:"titles"`
		Rows     int      `json:"rows"`
		Groups   []string `json:"groups"`
		Overflow bool     `json:"overflow"`
		Bold     int      `json:"bold"`
	}
	if err := json.Unmarshal([]byte(raw), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.SVGs) != len(files)+1 || len(page.Titles) != len(files)+1 {
		t.Fatalf("%d drawings, %d titles for %d graphs: %s", len(page.SVGs), len(page.Titles), len(files)+1, raw)
	}
	for i, s := range page.SVGs {
		if s.W < 200 || s.H < 200 || s.Edges == 0 || s.Edges != s.Labels {
			t.Errorf("%s: drawing %+v: want a visible graph with a label per edge", page.Titles[i], s)
		}
	}
	if len(page.Groups) != 2 || page.Rows != len(files)+1+len(page.Groups) {
		t.Errorf("groups %q, %d table rows", page.Groups, page.Rows)
	}
	if page.Bold != 0 || !strings.Contains(strings.Join(page.Titles, "|"), "<b>odd & user</b>") {
		t.Errorf("a user id with markup is not shown as text: %q", page.Titles)
	}
	if page.Overflow {
		t.Error("the report scrolls sideways at 1280 px")
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "analytics-report.png")
	if keep := os.Getenv("LABLOG_ANALYTICS_SCREENSHOT"); keep != "" {
		shot = keep
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", shot, len(png))

	problems, requests := ev.snapshot()
	for _, p := range problems {
		t.Errorf("page reported: %s", p)
	}
	for _, r := range requests {
		if r != url {
			t.Errorf("the report requested %s", r)
		}
	}
	// The listener does hear errors and requests: a probe must show up.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`console.error("probe"); fetch("http://127.0.0.1:9/").catch(function () {}); 1`)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = ev.changed.Await(wctx, &ev.mu, func() bool {
		heard := 0
		for _, p := range ev.problems {
			if strings.Contains(p, "probe") {
				heard++
			}
		}
		for _, r := range ev.requests {
			if strings.Contains(r, "127.0.0.1:9") {
				heard++
			}
		}
		return heard >= 2
	})
	if err != nil {
		problems, requests = ev.snapshot()
		t.Errorf("the probes (a console error, a request) were not both heard: %v %q %q", err, problems, requests)
	}
}
