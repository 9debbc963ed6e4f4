package relaytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/testing/testkit"
)

func newHost(t *testing.T, opts HostOptions) *Host {
	t.Helper()
	h, err := NewHost(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// api calls the host's API and returns status and body, trimmed.
func api(t *testing.T, h *Host, method, path, body string) (int, string) {
	t.Helper()
	code, b := call(t, h, method, path, body)
	return code, strings.TrimSpace(b)
}

// rawGet is a GET returning the body exactly as sent.
func rawGet(t *testing.T, h *Host, path string) (int, string) {
	t.Helper()
	return call(t, h, http.MethodGet, path, "")
}

func call(t *testing.T, h *Host, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, strings.Replace(h.URL(), "ws://", "http://", 1)+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHostRulesAPIQuirks(t *testing.T) {
	h := newHost(t, HostOptions{})
	// The real host: json.NewEncoder(w).Encode("ok"), bytes 22 6f 6b 22 0a.
	if s, b := rawGet(t, h, "/healthcheck"); s != 200 || b != "\"ok\"\n" {
		t.Fatalf("healthcheck: %d %q, want the real host's \"ok\"\\n", s, b)
	}
	if s, b := api(t, h, "GET", "/api/destinations/all", ""); s != 200 || b != "{}" {
		t.Fatalf("no rules: %d %q", s, b)
	}
	// Posting echoes the rule, leading slash of the stream dropped.
	rule := `{"id":"r1","stream":"/spin30","destination":"ws://127.0.0.1:1/x","token":"","file":""}`
	if s, b := api(t, h, "POST", "/api/destinations", rule); s != 200 || !strings.Contains(b, `"stream":"spin30"`) {
		t.Fatalf("post: %d %q", s, b)
	}
	// Same id: replaced, not added.
	tok := "eyJhbGciOiJIUzI1NiJ9.e30.sig"
	rule2 := `{"id":"r1","stream":"spin30","destination":"http://127.0.0.1:1/session/spin30-log","token":"` + tok + `","file":""}`
	api(t, h, "POST", "/api/destinations", rule2)
	api(t, h, "POST", "/api/destinations", `{"id":"all","stream":"spin31","destination":"ws://127.0.0.1:1/y"}`)
	s, b := api(t, h, "GET", "/api/destinations/all", "")
	var all map[string]Rule
	if err := json.Unmarshal([]byte(b), &all); s != 200 || err != nil {
		t.Fatalf("all: %d %q %v", s, b, err)
	}
	if len(all) != 2 || all["r1"].Token != tok || all["r1"].Destination != "http://127.0.0.1:1/session/spin30-log" {
		t.Fatalf("all = %+v: want r1 replaced, with its full token, and all", all)
	}
	// An unknown id is an empty rule with 200, not a 404.
	if s, b := api(t, h, "GET", "/api/destinations/nope", ""); s != 200 || b != `{"id":"","stream":"","destination":"","token":"","file":""}` {
		t.Fatalf("unknown id: %d %q", s, b)
	}
	if s, b := api(t, h, "GET", "/api/destinations/r1", ""); s != 200 || !strings.Contains(b, tok) {
		t.Fatalf("get r1: %d %q", s, b)
	}
	// DELETE .../all deletes the rule named "all" and nothing else.
	if s, b := api(t, h, "DELETE", "/api/destinations/all", ""); s != 200 || b != `"all"` {
		t.Fatalf("delete all: %d %q", s, b)
	}
	if r := h.Rules(); len(r) != 1 || r["r1"].ID != "r1" {
		t.Fatalf("after DELETE all: %+v, want r1 still there", r)
	}
	if s, b := api(t, h, "DELETE", "/api/destinations/r1", ""); s != 200 || b != `"r1"` {
		t.Fatalf("delete r1: %d %q", s, b)
	}
	if len(h.Rules()) != 0 {
		t.Fatalf("rules left: %+v", h.Rules())
	}
	if s, _ := api(t, h, "POST", "/api/destinations", "{not json"); s != 500 {
		t.Fatalf("bad json: %d, want 500", s)
	}
	if s, _ := api(t, h, "GET", "/api/destinations/a_b", ""); s != 404 {
		t.Fatalf("id outside [a-zA-Z0-9-/]: %d, want 404", s)
	}
}

// A rule with a token opens an upstream through the access protocol;
// frames pass raw both ways; a restart cuts local clients and loses rules.
func TestHostRuleUpstreamAndRestart(t *testing.T) {
	r := newRelay(t, nil)
	h := newHost(t, HostOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ui := joinTopic(t, r, "spin30-log", "read", "write")
	tok := token(r, "spin30-log", "read", "write")
	rule, _ := json.Marshal(Rule{ID: "spin30", Stream: "spin30", Destination: r.AccessURL("spin30-log"), Token: tok})
	api(t, h, "POST", "/api/destinations", string(rule))
	if err := h.WaitUpstreams(ctx(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitReaders(ctx(t), "spin30-log", 2); err != nil { // the UI and the host
		t.Fatal(err)
	}
	local := dialPeer(t, h.URL()+"/ws/spin30")
	if err := h.Local().WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	ui.send(t, `{"a":1}{"b": NaN}`)
	if got := local.next(t); got != `{"a":1}{"b": NaN}` {
		t.Fatalf("local client got %q", got)
	}
	local.send(t, `{"cmd":"up"}`)
	if got := ui.next(t); got != `{"cmd":"up"}` {
		t.Fatalf("upstream got %q", got)
	}
	// The local client may read the frame a moment before the host counts it.
	if !testkit.Poll(wait, func() bool { return h.UpstreamFrames("spin30") == 1 && h.DeliveredCount("spin30") == 1 }) {
		t.Fatalf("upstream frames %d, delivered %d", h.UpstreamFrames("spin30"), h.DeliveredCount("spin30"))
	}

	if err := h.Restart(); err != nil {
		t.Fatal(err)
	}
	local.ended(t)
	if len(h.Rules()) != 0 || h.Upstreams() != 0 {
		t.Fatalf("after restart: rules %v, upstreams %d", h.Rules(), h.Upstreams())
	}
	if d := h.Delivered("spin30"); len(d) != 1 || !bytes.Equal(d[0], []byte(`{"a":1}{"b": NaN}`)) {
		t.Fatalf("delivered across restarts: %q", d)
	}
	if s, b := api(t, h, "GET", "/healthcheck", ""); s != 200 || b != `"ok"` {
		t.Fatalf("healthcheck after restart: %d %q", s, b)
	}
}

// An expired token makes the host retry forever, never recovering.
func TestHostRetriesExpiredTokenForever(t *testing.T) {
	r := newRelay(t, nil)
	h := newHost(t, HostOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	now := time.Now()
	tok := Token(secret, TokenSpec{Topic: "spin30-log", Scopes: []string{"read"}, BookingID: "b", Audience: r.URL(),
		IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	rule, _ := json.Marshal(Rule{ID: "spin30", Stream: "spin30", Destination: r.AccessURL("spin30-log"), Token: tok})
	api(t, h, "POST", "/api/destinations", string(rule))
	if err := r.WaitAnswers(ctx(t), 401, 5); err != nil {
		t.Fatalf("answers: %d", r.Answers(401))
	}
	if h.Upstreams() != 0 {
		t.Fatal("an expired token got an upstream")
	}
}

func TestHostDefaultsAreTheRealHostsBackoff(t *testing.T) {
	h := newHost(t, HostOptions{})
	if h.opts.MinBackoff != time.Second || h.opts.MaxBackoff != 10*time.Second {
		t.Fatalf("backoff %v..%v, want 1s..10s", h.opts.MinBackoff, h.opts.MaxBackoff)
	}
	c, _, err := websocket.DefaultDialer.Dial(h.URL()+"/ws/api", nil)
	if err == nil {
		c.Close()
		t.Fatal("api is a stream name")
	}
}
