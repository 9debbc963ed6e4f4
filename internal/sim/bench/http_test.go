package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The calls look like the UIs' (docs: practable-http.md): JSON statements
// of about 400 bytes, with varying users, verbs and graph nodes, and the
// three query parameters.
func TestMakeStatements(t *testing.T) {
	calls := makeStatements(500, 1)
	users, verbs, nodes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	size := 0
	for _, c := range calls {
		var s struct {
			Actor   struct{ ID string }
			Verb    struct{ Name string }
			Context struct {
				GraphNode string `json:"graph_node"`
			}
		}
		if err := json.Unmarshal(c.body, &s); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, c.body)
		}
		q, err := url.ParseQuery(c.query)
		if err != nil || len(q) != 3 || q.Get("username") != s.Actor.ID || q.Get("hardware") == "" {
			t.Fatalf("query %q for %s", c.query, c.body)
		}
		users[s.Actor.ID], verbs[s.Verb.Name], nodes[s.Context.GraphNode] = true, true, true
		size += len(c.body)
	}
	if avg := size / len(calls); avg < 350 || avg > 450 {
		t.Errorf("statements of %d bytes on average, want about 400", avg)
	}
	if len(users) < 100 || len(verbs) < 5 || len(nodes) < 10 {
		t.Errorf("too little variety: %d users, %d verbs, %d graph nodes", len(users), len(verbs), len(nodes))
	}
	if !bytes.Equal(makeStatements(3, 9)[2].body, makeStatements(3, 9)[2].body) {
		t.Error("the same seed makes different calls")
	}
}

// The baseline answers 204 only once the statement's line is written and
// fsynced, one fsync a statement, and refuses a call without the credential.
func TestFsyncServer(t *testing.T) {
	dir := t.TempDir()
	s, err := newFsyncServer(dir, "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close(context.Background()) })
	calls := makeStatements(3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range calls {
		if code, err := post(ctx, http.DefaultClient, httpTarget{s.url(), "u", "p"}, c); err != nil || code != http.StatusNoContent {
			t.Fatalf("post: %d %v", code, err)
		}
	}
	if code, err := post(ctx, http.DefaultClient, httpTarget{s.url(), "u", "wrong"}, calls[0]); err != nil || code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d %v", code, err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "statements.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n"))
	if len(lines) != len(calls) || s.fsyncs.Load() != int64(len(calls)) {
		t.Fatalf("%d lines, %d fsyncs for %d statements", len(lines), s.fsyncs.Load(), len(calls))
	}
	for i, l := range lines {
		if want := calls[i].query + "\t" + string(calls[i].body); string(l) != want {
			t.Errorf("line %d: %s", i, l)
		}
	}
}

// A paced drive offers rate calls a second, no more, and counts each
// answer; a flat-out drive is ended by its duration.
func TestDriveHTTP(t *testing.T) {
	s, err := newFsyncServer(t.TempDir(), "u", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close(context.Background()) })
	ctx := context.Background()
	calls := makeStatements(10, 1)
	paced := driveHTTP(ctx, httpTarget{s.url(), "u", "p"}, calls, 4, 50, time.Second)
	if paced.acked < 40 || paced.acked > 50 || paced.refused != 0 || len(paced.latencies) != int(paced.acked) {
		t.Errorf("paced at 50/s for 1s: %d acknowledged, %d refused, %d latencies", paced.acked, paced.refused, len(paced.latencies))
	}
	if s.fsyncs.Load() < paced.acked {
		t.Errorf("%d acknowledged, %d fsynced", paced.acked, s.fsyncs.Load())
	}
	bad := driveHTTP(ctx, httpTarget{s.url(), "u", "wrong"}, calls, 2, 0, 300*time.Millisecond)
	if bad.acked != 0 || bad.refused == 0 || bad.firstRefusal == "" || bad.elapsed > 5 {
		t.Errorf("wrong password flat out: %+v", bad)
	}
	if p := quantile(paced.latencies, 0.99); !(p >= quantile(paced.latencies, 0.5)) {
		t.Errorf("p99 %v below p50", p)
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]float64{0.5: 5, 0.99: 10, 0.1: 1, 0: 1} {
		if got := quantile(v, q); got != want {
			t.Errorf("quantile %v: %v, want %v", q, got, want)
		}
	}
	if got := quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("quantile of nothing: %v, want NaN", got)
	}
}
