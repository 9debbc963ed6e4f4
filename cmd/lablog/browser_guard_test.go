package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/practable/lablog/internal/testing/testkit"
)

// In a real browser: a page on another site cannot frame the status page
// (so no click there can acknowledge a fault), and a name pointed at
// lablog's address by DNS rebinding reads nothing.
func TestStatusPageGuardsInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	// rebind.example resolves to loopback, as a rebinding attacker's name
	// would after its short TTL ran out.
	ctx := browser(t, chromedp.Flag("host-resolver-rules", "MAP rebind.example 127.0.0.1"))
	d := runInProcess(t, []string{"spin30"}, "", "")

	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>elsewhere</title><iframe id="f" src="%s/" width="400" height="300"></iframe>`, d.url)
	}))
	t.Cleanup(other.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(other.URL)); err != nil {
		t.Fatal(err)
	}
	// The frame's document ends as Chromium's error page, never the
	// status page.
	var frameURL string
	testkit.Eventually(t, 20*time.Second, "the framed page to settle", func() bool {
		res, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			t.Fatal(err)
		}
		tree := res.FrameTree
		if len(tree.ChildFrames) != 1 {
			return false
		}
		frameURL = tree.ChildFrames[0].Frame.URL
		return frameURL != "" && frameURL != "about:blank"
	})
	if !strings.HasPrefix(frameURL, "chrome-error:") {
		t.Errorf("the status page loaded in another site's frame: %s", frameURL)
	}

	// Rebinding: the browser sends Host rebind.example and gets nothing.
	port := d.url[strings.LastIndex(d.url, ":")+1:]
	if err := chromedp.Do(ctx, chromedp.Navigate("http://rebind.example:"+port+"/api/status")); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text("body"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, "streams") || !strings.Contains(body, "unknown host name") {
		t.Errorf("a rebound name read the status: %.200q", body)
	}
}
