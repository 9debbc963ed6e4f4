package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

const chromium = "/usr/bin/chromium"

// browser starts Debian's headless Chromium with a fresh profile, sized
// like a phone, since that is how a technician often looks; extra adds
// command-line options.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI (apt-get install chromium)", chromium)
		}
		t.Skipf("%s not installed", chromium)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// pageState is what the page shows, read from its DOM.
type pageState struct {
	Health  string `json:"health"`
	Updated string `json:"updated"`
	Drive   string `json:"drive"`
	Rows    []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Min   int64  `json:"min"`
	} `json:"rows"`
	Overflow      bool  `json:"overflow"`       // the page is wider than the phone
	TableOverflow bool  `json:"table_overflow"` // the stream table scrolls sideways
	Widths        []int `json:"widths"`         // the document's scroll and client widths, the window's
}

const readPage = `JSON.stringify({
  health: document.getElementById("health").textContent,
  updated: document.getElementById("updated").textContent,
  drive: document.getElementById("archive-drive").textContent,
  rows: Array.from(document.querySelectorAll("#streams tr")).map(function (tr) {
    return {name: tr.dataset.stream, state: tr.querySelector(".state").textContent, min: +tr.querySelector(".min").textContent};
  }),
  overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  widths: [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth],
  table_overflow: (function (e) { return e.scrollWidth > e.parentNode.clientWidth; })(document.getElementById("stream-table"))
})`

// readVoice lists what the page, as the browser shows it, says against
// itself: a text in the failing red or the word FAILING under a headline
// that is not FAILING (or WARNING under OK); a text cut (clamped, or
// overflowing a box that hides it); no stated time convention, or an
// update time that is not it; a table column with nothing in it.
const readVoice = `JSON.stringify((function () {
  var out = [], live = document.getElementById("live") || document.body;
  var health = document.getElementById("health").textContent;
  // The failing red is the FAILING headline's background.
  var probe = document.createElement("div");
  probe.className = "h-failing";
  live.appendChild(probe);
  var red = getComputedStyle(probe).backgroundColor;
  live.removeChild(probe);
  Array.from(live.querySelectorAll("*")).forEach(function (e) {
    var cs = getComputedStyle(e), own = Array.from(e.childNodes).some(function (n) { return n.nodeType === 3 && n.textContent.trim(); });
    if (own && e.id !== "health" && health !== "FAILING" && cs.color === red) out.push("red text under " + health + ": " + e.textContent.slice(0, 80));
    if (cs.webkitLineClamp && cs.webkitLineClamp !== "none") out.push("clamped: " + e.textContent.slice(0, 80));
    var hides = /hidden|clip/.test(cs.overflowX + cs.overflowY);
    if (hides && (e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1)) out.push("cut: " + e.textContent.slice(0, 80));
  });
  var text = live.innerText;
  ["FAILING", "WARNING"].forEach(function (w) {
    if (w !== health && (health !== "FAILING" || w !== "WARNING") && text.indexOf(w) >= 0) out.push("the word " + w + " under " + health);
  });
  if (text.indexOf("all times UTC") < 0) out.push("no time convention stated");
  var updated = document.getElementById("updated").textContent, now = new Date().toISOString().slice(11, 19);
  if (!/^\d\d:\d\d:\d\d UTC$/.test(updated) || Math.abs(Date.parse("1970-01-01T" + updated.slice(0, 8) + "Z") - Date.parse("1970-01-01T" + now + "Z")) > 30000)
    out.push("updated " + updated + " is not UTC (now " + now + " UTC)");
  var heads = Array.from(document.querySelectorAll("#stream-table th")).map(function (th) { return th.textContent; });
  heads.forEach(function (h, i) {
    var cells = Array.from(document.querySelectorAll("#streams tr")).map(function (tr) { return (tr.children[i] || {}).textContent || ""; });
    if (cells.length && cells.every(function (c) { return c.trim() === "" || c.trim() === "–"; })) out.push("empty column " + h);
  });
  return out;
})())`

// contradictions is what readVoice finds on the page now; none, for a page
// that never contradicts itself.
func contradictions(t *testing.T, ctx context.Context) []string {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readVoice))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// screenshot saves the whole page at a width, and keeps a copy in
// $LABLOG_SCREENSHOTS (a folder) for a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string, width int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 844)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("LABLOG_SCREENSHOTS"); keep != "" {
		_ = os.WriteFile(filepath.Join(keep, name), png, 0o644)
	}
	t.Logf("screenshot %s at %d px (%d bytes)", name, width, len(png))
}

func read(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readPage))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	var p pageState
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// awaitPage polls the page (which refreshes itself) until cond holds.
func awaitPage(t *testing.T, ctx context.Context, limit time.Duration, what string, cond func(pageState) bool) pageState {
	t.Helper()
	var p pageState
	// Every 100 ms: each read asks the browser, and the page refreshes itself.
	if !testkit.PollEvery(limit, 100*time.Millisecond, func() bool { p = read(t, ctx); return cond(p) }) {
		t.Fatalf("page never showed %s within %v; last: %+v", what, limit, p)
	}
	return p
}

// The acceptance test of the status page, in a real browser: a lablog
// recording a simulated lab shows every stream connected with counts
// rising, a cut stream turning to reconnecting, and the archive turning
// unavailable when its folder goes away.
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		// make test runs it in full; the -short pass under qemu-user for
		// arm64 would only drive the same amd64 browser much slower.
		t.Skip("browser test skipped in -short mode")
	}
	ctx := browser(t)
	names := []string{"spin30", "spin31", "pend00"}
	d := runInProcess(t, names, "", "")
	labCtx, stopLab := context.WithCancel(context.Background())
	lab := labsim.NewLab(d.host, labsim.LabOptions{Streams: names, Rate: 20, Seed: 3})
	labDone := make(chan struct{})
	go func() { defer close(labDone); _ = lab.Run(labCtx) }()
	t.Cleanup(func() { stopLab(); <-labDone })

	if err := chromedp.Do(ctx, chromedp.Navigate(d.url+"/"), chromedp.WaitVisible(chromedp.ID("health"))); err != nil {
		t.Fatal(err)
	}
	first := awaitPage(t, ctx, 30*time.Second, "every stream connected and counting", func(p pageState) bool {
		if len(p.Rows) != len(names) {
			return false
		}
		for _, r := range p.Rows {
			if r.State != "connected" || r.Min == 0 {
				return false
			}
		}
		return strings.HasPrefix(p.Drive, "mounted at ")
	})
	if first.Overflow || first.TableOverflow {
		t.Errorf("at 390 px the page (%v, widths %v) or the stream table (%v) scrolls sideways", first.Overflow, first.Widths, first.TableOverflow)
	}
	for _, c := range contradictions(t, ctx) {
		t.Errorf("at the start: %s", c)
	}
	if first.Health != "OK" && first.Health != "WARNING" { // WARNING only for an unsynced clock
		t.Errorf("health %q at the start", first.Health)
	}
	rising := awaitPage(t, ctx, 30*time.Second, "counts rising after a refresh", func(p pageState) bool {
		if p.Updated == first.Updated {
			return false
		}
		for i, r := range p.Rows {
			if r.Min <= first.Rows[i].Min {
				return false
			}
		}
		return true
	})
	t.Logf("messages in the last minute: %+v then %+v", first.Rows, rising.Rows)

	// Cut spin31: its connection drops and the host refuses it.
	d.host.Refuse("spin31", true)
	d.host.DropClients("spin31")
	awaitPage(t, ctx, 30*time.Second, "spin31 reconnecting", func(p pageState) bool {
		for _, r := range p.Rows {
			if r.Name == "spin31" && !strings.HasPrefix(r.State, "reconnecting since ") {
				return false
			}
			if r.Name != "spin31" && r.State != "connected" {
				return false
			}
		}
		return p.Health == "WARNING"
	})

	// Take the archive away: the status checks the drive on its own schedule.
	if err := os.RemoveAll(d.archive); err != nil {
		t.Fatal(err)
	}
	last := awaitPage(t, ctx, 30*time.Second, "the archive unavailable", func(p pageState) bool {
		return p.Drive == "NOT available: does not exist"
	})
	if last.Overflow || last.TableOverflow {
		t.Errorf("with long error messages, at 390 px the page (%v, widths %v) or the stream table (%v) scrolls sideways", last.Overflow, last.Widths, last.TableOverflow)
	}
	// Long errors wrap: nothing is cut, nothing redder than the headline.
	for _, c := range contradictions(t, ctx) {
		t.Errorf("at 390 px: %s", c)
	}
	if last.Health != "WARNING" {
		t.Errorf("health %q with a stream reconnecting and no archive, want WARNING", last.Health)
	}
	screenshot(t, ctx, "status-page-phone.png", 390)
	screenshot(t, ctx, "status-page-desktop.png", 1280)
	for _, c := range contradictions(t, ctx) {
		t.Errorf("at 1280 px: %s", c)
	}
}
