package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testkit"
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
		strings.Contains(string(body), `class="bad">NOT synced`) {
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
