package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/practable/lablog/internal/testing/testkit"
)

// The demo serves the status page while it records, and says where.
func TestDemoServesStatusPage(t *testing.T) {
	out := &testkit.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--dir", t.TempDir(), "--duration", "0", "--streams", "2", "--rate", "50", "--listen", "127.0.0.1:0"}, out, out)
	}()
	re := regexp.MustCompile(`status page: (http://127\.0\.0\.1:\d+)/ `)
	d := &daemon{}
	testkit.Eventually(t, 10*time.Second, "the demo to print the status page's URL", func() bool {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			d.url = m[1]
		}
		return d.url != ""
	})
	testkit.Eventually(t, 20*time.Second, "both demo streams counted", func() bool {
		s := d.status(t)
		return len(s.Streams) == 2 && s.Streams[0].MessagesTotal > 0 && s.Streams[1].MessagesTotal > 0
	})
	// Healthy means OK, whether or not this machine's clock is synced.
	testkit.Eventually(t, 20*time.Second, "the demo's health to be ok", func() bool {
		s := d.status(t)
		return s.Health == "ok" && !s.ClockExpected
	})
	if code, body := d.get(t, "/"); code != 200 || !strings.Contains(string(body), `data-stream="spin30"`) ||
		!strings.Contains(string(body), `<span id="clock" class="l-">not synced (not needed here)</span>`) && !strings.Contains(string(body), `<span id="clock" class="l-ok">synced</span>`) {
		t.Errorf("GET /: %d\n%.300s", code, body)
	}
	if v := metricValue(scrapeMetrics(t, d), "lablog_messages_received_total", "spin31"); v <= 0 {
		t.Errorf("metrics: spin31 received %v", v)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not end after Ctrl-C")
	}
	if !strings.Contains(out.String(), "all 2 files verified") && !strings.Contains(out.String(), "files verified") {
		t.Errorf("demo output:\n%s", out)
	}
}

// The demo's page, in a real browser at phone and desktop width, says what
// is true: the demo requires no drive (archive.require: none), so the page
// says so instead of "mounted" in green; and nothing on it contradicts the
// headline, is cut, mixes time zones or leaves a column empty.
func TestDemoPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	ctx := browser(t)
	out := &testkit.LogBuffer{}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"demo", "--dir", t.TempDir(), "--duration", "0", "--streams", "3", "--rate", "20", "--listen", "127.0.0.1:0"}, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("demo did not end after Ctrl-C")
		}
	})
	re := regexp.MustCompile(`status page: (http://127\.0\.0\.1:\d+)/ `)
	var url string
	testkit.Eventually(t, 10*time.Second, "the demo to print the status page's URL", func() bool {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("health"))); err != nil {
		t.Fatal(err)
	}
	p := awaitPage(t, ctx, 30*time.Second, "every demo device connected and counting, the drive checked", func(p pageState) bool {
		for _, r := range p.Rows {
			if r.State != "connected" || r.Min == 0 {
				return false
			}
		}
		return len(p.Rows) == 3 && p.Drive != "not checked yet" && p.Health == "OK"
	})
	if !strings.HasPrefix(p.Drive, "no drive required (archive.require: none): writing to the folder ") {
		t.Errorf("drive %q, want it to say no drive is required", p.Drive)
	}
	driveColour, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("archive-drive")).color + " " +
		getComputedStyle(document.getElementById("stream-table").querySelector(".state")).color`))
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Fields(strings.ReplaceAll(driveColour, ", ", ",")); len(c) != 2 || c[0] == c[1] {
		t.Errorf("the drive is shown in the colour of a connected stream (%s): it says nothing is wrong or right", driveColour)
	}
	for _, c := range contradictions(t, ctx) {
		t.Errorf("at 390 px: %s", c)
	}
	screenshot(t, ctx, "demo-page-phone.png", 390)
	screenshot(t, ctx, "demo-page-desktop.png", 1280)
	for _, c := range contradictions(t, ctx) {
		t.Errorf("at 1280 px: %s", c)
	}
}
