package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/analytics/dashboard"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// dashboardKey is one graph the test asks the dashboards' API for.
type dashboardKey struct{ user, hardware, course string }

func (k dashboardKey) query() string {
	return url.Values{"username": {k.user}, "course": {k.course}, "hardware": {k.hardware}}.Encode()
}

// dashGet asks lablog's dashboards' API and returns the answer's bytes;
// while the store is still counting (503, after a start that lost it) it
// asks again.
func dashGet(t *testing.T, base, path string) []byte {
	t.Helper()
	var body []byte
	testkit.Eventually(t, 60*time.Second, "an answer to "+path, func() bool {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case 200:
			return true
		case http.StatusServiceUnavailable:
			return false
		}
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		return false
	})
	return body
}

// servedMatrix is the matrix a /studentGraph answer draws.
func servedMatrix(t *testing.T, base string, k dashboardKey) *analytics.Matrix {
	t.Helper()
	var g dashboard.Graph
	if err := json.Unmarshal(dashGet(t, base, "/studentGraph?"+k.query()), &g); err != nil {
		t.Fatal(err)
	}
	m := analytics.NewMatrix(analytics.Experiments[k.hardware].Nodes)
	for _, e := range g.Edges {
		i, j := slices.Index(m.Nodes, e.From), slices.Index(m.Nodes, e.To)
		if i < 0 || j < 0 {
			t.Fatalf("edge %+v: not a %s node", e, k.hardware)
		}
		m.W[i][j] = e.Weight
	}
	return m
}

// everyAnswer is every endpoint's answer for keys, for comparing runs.
func everyAnswer(t *testing.T, base string, keys []dashboardKey) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range keys {
		for _, path := range dashboard.Paths {
			p := path + "?" + k.query() + "&taskcode=" + k.hardware + "-engdes1-1-core"
			out[p] = string(dashGet(t, base, p))
		}
	}
	return out
}

// The real binary serves, for every user of the learning-analytics
// fixtures sent over a websocket log stream, the graph lablog analytics
// writes for them, and the same graph for their commands sent as /addLog
// statements; a statement just committed is in the next answer; and
// compactions, a SIGKILL and restarts change no answer.
func TestDashboardsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills the real binary; not in -short")
	}
	bin := lablogBinary(t)
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	dir := t.TempDir()
	graphs, err := filepath.Abs(laFixture(t, "comparison_graphs"))
	if err != nil {
		t.Fatal(err)
	}
	sections := addLogSection(t, dir, `"`+alOrigin+`"`) + "\n" +
		fmt.Sprintf("analytics: {comparison_dir: %s, time_zone: UTC}\n", graphs)
	cfgPath, _, root := crashConfig(t, dir, host.URL(), []string{"spin30"}, "", sections)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	runs := 0
	start := func() (*exec.Cmd, string) {
		t.Helper()
		runs++
		logPath := filepath.Join(dir, fmt.Sprintf("run%d.log", runs))
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
		cmd.Stderr = logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
		var base string
		defer func() {
			if base == "" {
				log, _ := os.ReadFile(logPath)
				t.Logf("log:\n%s", log)
			}
		}()
		testkit.Eventually(t, 20*time.Second, "the addlog address in the log", func() bool {
			log, _ := os.ReadFile(logPath)
			if m := addLogURL.FindSubmatch(log); m != nil {
				base = string(m[1])
			}
			return base != ""
		})
		return cmd, base
	}
	cmd, base := start()
	if err := host.WaitClients(ctx, "spin30", 1); err != nil {
		t.Fatal(err)
	}

	// Every fixture log line on the websocket stream, in file order, and the
	// same lines as JSON lines for lablog analytics.
	var jsonl bytes.Buffer
	var lines [][]byte
	for _, sub := range []string{"comparison_logs", "test/data"} {
		files, _ := filepath.Glob(filepath.Join(laFixture(t, sub), "*.json"))
		for _, path := range files {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				lines = append(lines, bytes.Clone(sc.Bytes()))
				jsonl.Write(append(sc.Bytes(), '\n'))
			}
			f.Close()
		}
	}
	for _, l := range lines {
		host.Publish("spin30", l, false)
	}
	jsonlPath, out := filepath.Join(dir, "fixtures.jsonl"), filepath.Join(dir, "matrices")
	if err := os.WriteFile(jsonlPath, jsonl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := runCmd(t, "analytics", "--jsonl", jsonlPath, "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	csvs, _ := filepath.Glob(filepath.Join(out, "*-adjacency.csv"))
	want := map[dashboardKey]*analytics.Matrix{}
	for _, path := range csvs {
		name := strings.TrimSuffix(filepath.Base(path), "-adjacency.csv")
		parts := strings.Split(name, "-")
		n := len(parts)
		k := dashboardKey{user: strings.Join(parts[:n-2], "-"), hardware: parts[n-2], course: parts[n-1]}
		f, _ := os.Open(path)
		m, err := analytics.ReadCSV(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want[k] = m
	}
	if len(want) < 4 {
		t.Fatalf("lablog analytics wrote %d matrices", len(want))
	}

	// The same commands as clicked statements, of users named st-*.
	for _, l := range lines {
		var m struct {
			User, Exp, Course *string
			T                 *int64
			Payload           struct{ Log string }
		}
		if json.Unmarshal(l, &m) != nil || m.User == nil || m.Exp == nil || m.Course == nil || m.T == nil {
			continue
		}
		e := analytics.Experiments[*m.Exp]
		node, ok := e.Commands[m.Payload.Log]
		if e == nil || !ok {
			continue
		}
		user := "st-" + *m.User
		body := fmt.Sprintf(`{"timestamp":%d,"actor":{"id":%q},"verb":{"name":"clicked"},"context":{"graph_node":%q}}`, *m.T, user, node)
		q := url.Values{"username": {user}, "course": {*m.Course}, "hardware": {*m.Exp}}.Encode()
		if code := postStatement(t, base, q, body); code != http.StatusNoContent {
			t.Fatalf("statement: %d", code)
		}
	}
	// Statements are committed when /addLog answers: served at once.
	var keys []dashboardKey
	for k, m := range want {
		st := dashboardKey{user: "st-" + k.user, hardware: k.hardware, course: k.course}
		keys = append(keys, k, st)
		if got := servedMatrix(t, base, st); !slices.EqualFunc(got.W, m.W, slices.Equal) {
			t.Errorf("%v from statements: %v, lablog analytics %v", st, got.W, m.W)
		}
	}
	// Websocket frames commit in the writer's next group: awaited.
	testkit.Eventually(t, 30*time.Second, "every websocket graph served as lablog analytics wrote it", func() bool {
		for k, m := range want {
			if !slices.EqualFunc(servedMatrix(t, base, k).W, m.W, slices.Equal) {
				return false
			}
		}
		return true
	})
	before := everyAnswer(t, base, keys)
	// The compactor (every second here) moves the records to the archive.
	testkit.Eventually(t, 30*time.Second, "the records archived", func() bool {
		files, _ := filepath.Glob(filepath.Join(root, "stream=*", "*", "*.parquet"))
		return len(files) >= 2
	})

	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	cmd, base = start()
	if after := everyAnswer(t, base, keys); !maps.Equal(before, after) {
		t.Errorf("answers changed by a SIGKILL and a restart:\n%s", diffAnswers(before, after))
	}
	// A statement just committed is in the next answer.
	k := keys[1]
	prev := servedMatrix(t, base, k)
	body := fmt.Sprintf(`{"timestamp":%d,"actor":{"id":%q},"verb":{"name":"clicked"},"context":{"graph_node":"record"}}`,
		time.Now().UnixMilli(), k.user)
	if k.hardware != "pendulum" {
		body = strings.Replace(body, `"record"`, `"speed_ramp"`, 1)
	}
	if code := postStatement(t, base, k.query(), body); code != http.StatusNoContent {
		t.Fatalf("statement: %d", code)
	}
	if now := servedMatrix(t, base, k); now.Total() != prev.Total()+1 {
		t.Errorf("%v: %v transitions after one more statement, want %v", k, now.Total(), prev.Total()+1)
	}
	before = everyAnswer(t, base, keys)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	_, base = start()
	if after := everyAnswer(t, base, keys); !maps.Equal(before, after) {
		t.Errorf("answers changed by a restart:\n%s", diffAnswers(before, after))
	}
}

func diffAnswers(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s\n  before %s\n  after  %s", k, v, b[k]))
		}
	}
	slices.Sort(out)
	return strings.Join(out[:min(len(out), 5)], "\n")
}

// With analytics.live off lablog records statements and keeps no live
// store: no side file beside the buffer, no dashboards' API, and the
// status answers without it.
func TestLiveAnalyticsOff(t *testing.T) {
	dir := t.TempDir()
	section := strings.Replace(addLogSection(t, dir, `"`+alOrigin+`"`), "}", ", dashboards: {serve: false}}", 1) +
		"\nanalytics: {live: false}"
	d := runInProcessIn(t, dir, nil, "", section)
	var base string
	testkit.Eventually(t, 10*time.Second, "the addlog address in the log", func() bool {
		if m := addLogURL.FindStringSubmatch(d.logs.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	if code := postStatement(t, base, "username=u&course=c&hardware=spinner", statementBodies[0]); code != http.StatusNoContent {
		t.Fatalf("statement: %d", code)
	}
	resp, err := http.Get(base + "/studentGraph?username=u&course=c&hardware=spinner")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/studentGraph with the live store off: %d, want 404", resp.StatusCode)
	}
	if st := d.status(t); st.AddLog == nil || st.AddLog.Total != 1 {
		t.Errorf("status: %+v", st.AddLog)
	}
	d.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "buffer.db.analytics")); !os.IsNotExist(err) {
		t.Errorf("a live store file beside the buffer: %v", err)
	}
	if strings.Contains(d.logs.String(), "analytics store") {
		t.Errorf("the log mentions the analytics store:\n%s", d.logs.String())
	}
}
