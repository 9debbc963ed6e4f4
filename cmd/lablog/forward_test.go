package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/cloud/forward"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/testing/forwardtest"
	"github.com/practable/lablog/internal/testing/testkit"
)

// markSlack is what a loaded machine may add to the forwarder's one-second
// mark interval (a tick served late, the mark's commit waiting for the
// disk): the saved mark must never be older than this before the kill.
const markSlack = 2 * time.Second

// Store and forward with the real binary: statements are acknowledged
// while the upstream refuses connections (ingest never waits on it), the
// compactor moves them all to the archive meanwhile (SIGUSR1), the upstream
// answers 500 and then recovers, and lablog is SIGKILLed in the middle of
// forwarding and started again. Every statement arrives upstream, in order
// per stream, byte for byte with its query; the only duplicates are the
// statements forwarded in the last mark interval before the kill.
func TestForwardAcrossSIGKILLAndCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary twice")
	}
	up := forwardtest.New(t, forwardtest.Down)
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "forward-credentials")
	if err := os.WriteFile(creds, []byte("lablog:up-pa55\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\ncompaction: {open_hours: true}\n"+
		"status: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n%s\n",
		filepath.Join(dir, "buffer.db"), root, addLogSection(t, dir, `"*"`))
	cfg = strings.TrimSuffix(cfg, "}\n") + fmt.Sprintf(",\n  forward: {url: %q, credentials_file: %s, min_backoff: 100ms, max_backoff: 500ms}}\n", up.URL(), creds)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	want := map[string][]forwardtest.Sent{}
	n := 0
	// post sends count statements of each hardware, the hardwares' UIs at
	// once and each in order, all of which must be acknowledged.
	post := func(base string, count int) {
		t.Helper()
		hardware := []string{"spinner", "pendulum"}
		errs := make(chan error, len(hardware))
		sent := make([][]forwardtest.Sent, len(hardware))
		for h, hw := range hardware {
			go func() {
				for i := range count {
					q := url.Values{"username": {fmt.Sprintf("u-%d", i%7)}, "course": {"eng1"}, "hardware": {hw}}
					body := fmt.Sprintf(`{"verb":{"name":"clicked"},"n":"%s-%d","text":"ΔV = 3 ✓ \"q\" & %%"}`, hw, len(want[hw])+i)
					if code, err := sendStatement(base, q.Encode(), body); err != nil || code != 204 {
						errs <- fmt.Errorf("%s statement %d: %d %v", hw, i, code, err)
						return
					}
					sent[h] = append(sent[h], forwardtest.Sent{Query: q.Encode(), Body: body})
				}
				errs <- nil
			}()
		}
		for range hardware {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for h, hw := range hardware {
			want[hw] = append(want[hw], sent[h]...)
			n += len(sent[h])
		}
	}

	began := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	cmd, logs := startDaemon(t, cfgPath, "addlog listening")
	base := addLogURL.FindStringSubmatch(logs.String())[1]
	post(base, 40) // acknowledged while the upstream refuses every connection
	phase("80 statements acknowledged, the upstream down")
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "every statement so far archived", func() bool {
		return archivedRecords(root) == n
	})
	phase("archived")
	testkit.Eventually(t, 10*time.Second, "refused attempts logged", func() bool {
		return strings.Count(logs.String(), "forward failed") >= 2
	})
	up.Set(forwardtest.Failing)
	post(base, 60) // these stay in the buffer: the next compaction is an hour away
	phase("120 more acknowledged, the upstream failing")
	testkit.Eventually(t, 10*time.Second, "attempts answered 500", func() bool { return up.Attempts() >= 2 })
	// Slow enough that forwarding lasts several mark intervals before
	// lablog is killed 3/4 of the way: a mark written less often than
	// stated would show as older statements sent again.
	up.SetDelay(30 * time.Millisecond)
	up.Set(forwardtest.Up)
	testkit.Eventually(t, 30*time.Second, "forwarding 3/4 done", func() bool { return len(up.Calls()) >= n*3/4 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	phase("SIGKILL")
	// The marks as the killed lablog last saved them.
	db, err := buffer.OpenReadOnly(filepath.Join(dir, "buffer.db"), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	saved, err := forward.SavedMarks(db)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := len(up.Calls())
	if before >= n {
		t.Fatalf("every statement was forwarded before the kill: make the upstream slower")
	}

	cmd, logs = startDaemon(t, cfgPath, "addlog listening")
	base = addLogURL.FindStringSubmatch(logs.String())[1]
	post(base, 10)
	testkit.Eventually(t, 60*time.Second, "every statement upstream", func() bool {
		distinct := map[forwardtest.Sent]bool{}
		for _, c := range up.Calls() {
			distinct[forwardtest.Sent{Query: c.Query, Body: string(c.Body)}] = true
		}
		return len(distinct) == n
	})
	phase("all forwarded")
	calls := up.Calls()
	dups, err := forwardtest.Check(calls, want, func(c forwardtest.Call) string {
		q, _ := url.ParseQuery(c.Query)
		return q.Get("hardware")
	})
	if err != nil {
		t.Fatal(err)
	}
	first := map[forwardtest.Sent]time.Time{}
	for _, c := range calls {
		s := forwardtest.Sent{Query: c.Query, Body: string(c.Body)}
		if _, ok := first[s]; !ok {
			first[s] = c.At
		}
		if c.User != "lablog" || c.Pass != "up-pa55" || c.ContentType != "application/json" {
			t.Fatalf("call with credential %q:%q, content type %q", c.User, c.Pass, c.ContentType)
		}
	}
	// The bound, exactly: what is sent again is what followed the saved
	// mark, and nothing the mark covers. Each hardware's statements were
	// committed in the order they were posted: seq is their index + 1.
	seqOf := map[forwardtest.Sent]uint64{}
	for _, list := range want {
		for i, s := range list {
			seqOf[s] = uint64(i + 1)
		}
	}
	for _, d := range dups {
		s := forwardtest.Sent{Query: d.Query, Body: string(d.Body)}
		q, _ := url.ParseQuery(d.Query)
		if mark := saved["addlog-"+q.Get("hardware")]; seqOf[s] <= mark {
			t.Errorf("statement %d of %s sent again though the saved mark (%d) covers it", seqOf[s], q.Get("hardware"), mark)
		}
		// And the mark is kept fresh: about once a second.
		if at := first[s]; at.Before(killed.Add(-time.Second - markSlack)) {
			t.Errorf("statement first forwarded %v before the kill was sent again: the mark was not saved for that long", killed.Sub(at))
		}
	}
	t.Logf("saved marks at the kill: %v", saved)
	t.Logf("%d statements (%d forwarded before the SIGKILL), %d sent again after it", n, before, len(dups))
	cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// archivedRecords counts the records the archive's file names hold.
func archivedRecords(root string) int {
	files, _ := archive.Files(root)
	total := 0
	for _, f := range files {
		if name, ok := archive.ParseFileName(filepath.Base(f.Path)); ok {
			total += int(name.Last - name.First + 1)
		}
	}
	return total
}

// sendStatement posts body as a lab UI does, for goroutines that must not
// fail the test themselves.
func sendStatement(base, query, body string) (int, error) {
	req, err := http.NewRequest("POST", base+"/addLog?"+query, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(alUser, alPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// The status page, /api/status and /metrics show store and forward: the
// lag and the upstream's error while it fails, the counts once it
// recovers, and never the upstream's password.
func TestForwardStatus(t *testing.T) {
	up := forwardtest.New(t, forwardtest.Failing)
	dir := t.TempDir()
	creds := filepath.Join(dir, "forward-credentials")
	if err := os.WriteFile(creds, []byte("lablog:up-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	section := strings.TrimSuffix(addLogSection(t, dir, `"*"`), "}") +
		fmt.Sprintf(", forward: {url: %q, credentials_file: %s, min_backoff: 50ms, max_backoff: 100ms}}", up.URL(), creds)
	d := runInProcessIn(t, dir, nil, "", section)
	var base string
	testkit.Eventually(t, 10*time.Second, "the addlog address in the log", func() bool {
		m := addLogURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	for i := range 3 {
		if code := postStatement(t, base, "username=u&hardware=spinner", fmt.Sprintf(`{"n":%d}`, i)); code != http.StatusNoContent {
			t.Fatalf("statement %d: %d", i, code)
		}
	}
	testkit.Eventually(t, 10*time.Second, "the lag in /api/status", func() bool {
		f := d.status(t).AddLog.Forward
		return f != nil && f.Pending == 3 && strings.Contains(f.LastError, "500") && f.Oldest != nil
	})
	fams := scrapeMetrics(t, d)
	if f := fams["lablog_addlog_forward_pending_statements"]; f == nil || f.Metric[0].GetGauge().GetValue() != 3 {
		t.Errorf("lablog_addlog_forward_pending_statements: %v", f)
	}
	if f := fams["lablog_addlog_forward_lag_seconds"]; f == nil || f.Metric[0].GetGauge().GetValue() <= 0 {
		t.Errorf("lablog_addlog_forward_lag_seconds: %v", f)
	}
	_, html := d.get(t, "/")
	if want := "to " + up.URL() + ": 0 forwarded (0 from the archive), 3 waiting, the oldest for"; !strings.Contains(string(html), want) ||
		!strings.Contains(string(html), "failing: forward addlog-spinner seq 1: upstream answered 500") {
		t.Errorf("the page lacks %q and the error", want)
	}
	up.Set(forwardtest.Up)
	testkit.Eventually(t, 10*time.Second, "every statement forwarded", func() bool {
		f := d.status(t).AddLog.Forward
		return f.Forwarded == 3 && f.Pending == 0
	})
	_, html = d.get(t, "/")
	if want := ": 3 forwarded (0 from the archive), 0 waiting<"; !strings.Contains(string(html), want) {
		t.Errorf("the page lacks %q", want)
	}
	if f := scrapeMetrics(t, d)["lablog_addlog_forward_statements_total"]; f == nil || len(f.Metric) != 2 {
		t.Errorf("lablog_addlog_forward_statements_total: %v", f)
	}
	_, js := d.get(t, "/api/status")
	if strings.Contains(string(js), "up-s3cret") || strings.Contains(string(html), "up-s3cret") || strings.Contains(d.logs.String(), "up-s3cret") {
		t.Error("the upstream's password shows")
	}
	d.stop(t)
}
