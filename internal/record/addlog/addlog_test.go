package addlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/practable/lablog/internal/platform/httpserve"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

const (
	user, password = "spinner-ui", "s3cret-pass"
	origin         = "https://lab.example"
	body           = `{"timestamp":1733000000000,"actor":{"id":"u-1"},"verb":{"name":"clicked"},"context":{"exp_id":"spin30","graph_node":"voltage_step"}}`
)

// ingest is the handler in front of a real buffer and writer, served on
// loopback.
type ingest struct {
	h    *Handler
	db   *buffer.DB
	w    *buffer.Writer
	url  string
	logs *testkit.LogBuffer
}

func newIngest(t *testing.T, bufOpts buffer.Options, tune func(*Options)) *ingest {
	t.Helper()
	db := testkit.OpenBuffer(t, filepath.Join(t.TempDir(), "buffer.db"), bufOpts)
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := buffer.NewWriter(db, buffer.WriterOptions{Queue: 1024, Logger: log})
	testkit.Start(t, w) // stopped when the test ends
	var creds Credentials
	creds.Add(user, password)
	o := Options{Credentials: creds, AllowedOrigins: []string{origin}, Enqueue: w.Enqueue, Logger: log}
	if tune != nil {
		tune(&o)
	}
	h := New(o)
	srv, err := httpserve.New("127.0.0.1:0", h, httpserve.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &ingest{h: h, db: db, w: w, url: srv.URL(), logs: logs}
}

// do sends one request, with the UI's Basic credential when auth, and
// returns the answer (its body read).
func (in *ingest) do(t *testing.T, method, path, body string, hdr map[string]string, auth bool) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, in.url+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if auth {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// post sends one statement as a lab UI does.
func (in *ingest) post(t *testing.T, query, body string, auth bool) *http.Response {
	t.Helper()
	return in.do(t, "POST", "/addLog?"+query, body, map[string]string{"Content-Type": "application/json", "Origin": origin}, auth)
}

// records reads every statement of stream from the buffer.
func (in *ingest) records(t *testing.T, stream string) []frame.Record {
	t.Helper()
	groups, err := in.db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	var out []frame.Record
	for _, g := range groups {
		if g.Stream != stream {
			continue
		}
		if _, err := in.db.Scan(g, 0, ^uint64(0), func(_ uint64, r frame.Record) error {
			out = append(out, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestStatementRecordedBeforeItIsAcknowledged(t *testing.T) {
	in := newIngest(t, buffer.Options{}, nil)
	resp := in.post(t, "username=alice&course=ed1&hardware=spinner&extra=dropped", body, true)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	// The 2xx came after the commit: the record is in the buffer now.
	recs := in.records(t, "addlog-spinner")
	if len(recs) != 1 {
		t.Fatalf("%d records after the 2xx", len(recs))
	}
	q, b := frame.SplitStatement(recs[0].Data)
	if q != "course=ed1&hardware=spinner&username=alice" || string(b) != body || recs[0].Kind != frame.Statement {
		t.Errorf("recorded %q %q kind %v", q, b, recs[0].Kind)
	}
	st := in.h.Stats()
	if st.Total != 1 || len(st.Statements) != 1 || st.Statements[0] != (VerbCount{"spinner", "clicked", 1}) || st.LastStatement == nil {
		t.Errorf("stats %+v", st)
	}
}

// Many concurrent UIs share commits, and every 2xx is in the buffer.
func TestConcurrentStatementsShareCommits(t *testing.T) {
	in := newIngest(t, buffer.Options{}, nil)
	const clients, each = 16, 25
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b := fmt.Sprintf(`{"n":"%d-%d"}`, c, i)
				if resp := in.post(t, "username=u&hardware=pendulum", b, true); resp.StatusCode != http.StatusNoContent {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	recs := in.records(t, "addlog-pendulum")
	seen := map[string]bool{}
	for _, r := range recs {
		_, b := frame.SplitStatement(r.Data)
		seen[string(b)] = true
	}
	st := in.w.Stats()
	if len(recs) != clients*each || len(seen) != clients*each {
		t.Fatalf("%d records (%d distinct), want %d", len(recs), len(seen), clients*each)
	}
	if st.Commits >= clients*each {
		t.Errorf("%d commits for %d statements: no group commit", st.Commits, clients*each)
	}
	t.Logf("%d statements from %d clients in %d commits", len(recs), clients, st.Commits)
}

// A full buffer refuses with 503 and Retry-After, never a 2xx.
func TestFullBufferRefuses(t *testing.T) {
	in := newIngest(t, buffer.Options{MaxSize: 1 << 20, InitialMmapSize: 64 << 10}, func(o *Options) { o.MaxBody = 1 << 20 })
	noise := make([]byte, 150<<10) // incompressible, like a card's worth of real statements
	rand.Read(noise)
	big := `{"pad":"` + base64.StdEncoding.EncodeToString(noise) + `"}`
	var refused *http.Response
	for i := 0; i < 30 && refused == nil; i++ {
		resp := in.post(t, "hardware=spinner", big, true)
		switch resp.StatusCode {
		case http.StatusNoContent:
		case http.StatusServiceUnavailable:
			refused = resp
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if refused == nil {
		t.Fatal("a 1 MiB buffer never refused 6 MiB")
	}
	if refused.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	acked := int(in.h.Stats().Total)
	if got := len(in.records(t, "addlog-spinner")); got != acked {
		t.Errorf("%d acknowledged, %d in the buffer", acked, got)
	}
	if resp := in.post(t, "hardware=spinner", "{}", true); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("while full: status %d, want 503", resp.StatusCode)
	}
	if in.h.Stats().Refused < 2 {
		t.Errorf("refusals not counted: %+v", in.h.Stats())
	}
}

func TestHostileInput(t *testing.T) {
	in := newIngest(t, buffer.Options{}, func(o *Options) { o.MaxBody = 1024 })
	do := func(method, path, body string, hdr map[string]string, auth bool) *http.Response {
		return in.do(t, method, path, body, hdr, auth)
	}
	if r := do("POST", "/addLog", body, nil, false); r.StatusCode != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("no credential: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	wrong := map[string]string{"Authorization": "Basic " + basic(user, "guess")}
	if r := do("POST", "/addLog", body, wrong, false); r.StatusCode != 401 {
		t.Errorf("wrong password: %d", r.StatusCode)
	}
	if r := do("POST", "/addLog", strings.Repeat("x", 1025), nil, true); r.StatusCode != 413 {
		t.Errorf("1025 bytes over a 1024 limit: %d", r.StatusCode)
	}
	if r := do("POST", "/addLog", strings.Repeat("x", 1024), nil, true); r.StatusCode != 204 {
		t.Errorf("1024 bytes at the limit: %d", r.StatusCode)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if r := do(m, "/addLog", "", nil, true); r.StatusCode != 405 {
			t.Errorf("%s /addLog: %d, want 405", m, r.StatusCode)
		}
	}
	if r := do("POST", "/addLog", body, map[string]string{"X-Big": strings.Repeat("h", 64<<10)}, true); r.StatusCode != 431 {
		t.Errorf("64 KiB of headers: %d, want 431", r.StatusCode)
	}
	// Guessing: 10 failures a minute, then 429 even for the right pair.
	for i := 0; i < 8; i++ {
		do("POST", "/addLog", body, wrong, false)
	}
	if r := do("POST", "/addLog", body, nil, true); r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Errorf("after 10 failures: %d (Retry-After %q), want 429", r.StatusCode, r.Header.Get("Retry-After"))
	}
	st := in.h.Stats()
	if st.Unauthorized != 10 || st.TooLarge != 1 || st.RateLimited != 1 || st.Total != 1 {
		t.Errorf("stats %+v", st)
	}
	if strings.Contains(in.logs.String(), password) || strings.Contains(in.logs.String(), "guess") {
		t.Errorf("a credential reached the log:\n%s", in.logs)
	}
}

func basic(u, p string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestPreflight(t *testing.T) {
	in := newIngest(t, buffer.Options{}, nil)
	pre := func(from string) http.Header {
		req, _ := http.NewRequest("OPTIONS", in.url+"/addLog?username=a", nil)
		req.Header.Set("Origin", from)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("preflight from %s: %d", from, resp.StatusCode)
		}
		return resp.Header
	}
	h := pre(origin)
	if h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		h.Get("Access-Control-Allow-Headers") != "authorization, content-type" || h.Get("Access-Control-Max-Age") == "" {
		t.Errorf("allowed origin's preflight: %v", h)
	}
	for k := range pre("https://evil.example") {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("a disallowed origin got %s", k)
		}
	}
}

func TestClientAddressOnlyWhenAsked(t *testing.T) {
	in := newIngest(t, buffer.Options{}, nil)
	in.post(t, "hardware=spinner", body, true)
	kept := newIngest(t, buffer.Options{}, func(o *Options) {
		o.KeepClientAddress = true
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	req, _ := http.NewRequest("POST", kept.url+"/addLog?hardware=spinner", strings.NewReader(body))
	req.SetBasicAuth(user, password)
	req.Header.Set("X-Forwarded-For", "203.0.113.9, 127.0.0.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	q0, _ := frame.SplitStatement(in.records(t, "addlog-spinner")[0].Data)
	q1, _ := frame.SplitStatement(kept.records(t, "addlog-spinner")[0].Data)
	if strings.Contains(q0, "client") || strings.Contains(q0, "127.0.0.1") {
		t.Errorf("address kept unasked: %q", q0)
	}
	if v, _ := url.ParseQuery(q1); v.Get("client") != "203.0.113.9" {
		t.Errorf("kept %q, want the forwarded client 203.0.113.9", q1)
	}
}

func TestVerbs(t *testing.T) {
	in := newIngest(t, buffer.Options{}, nil)
	resp, err := http.Get(in.url + "/verbs/clicked")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte("clicked: ")) {
		t.Errorf("/verbs/clicked: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(in.url + "/verbs/teleported")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/verbs/teleported: %d", resp.StatusCode)
	}
}

func TestStreamName(t *testing.T) {
	for in, want := range map[string]string{
		"spinner": "addlog-spinner", "": "addlog-none", "none": "addlog-none", "Pendulum 2.0": "addlog-pendulum-2-0",
		"../../etc": "addlog-------etc", strings.Repeat("a", 60): "addlog-" + strings.Repeat("a", 40),
	} {
		if got := StreamName(in); got != want {
			t.Errorf("StreamName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	c, err := LoadCredentials(write("ok", "# UIs\nspinner-ui:pa:ss\n\npendulum-ui:x\n", 0o600))
	if err != nil || c.Len() != 2 {
		t.Fatalf("%d pairs, %v", c.Len(), err)
	}
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth("spinner-ui", "pa:ss")
	if !c.Allow(req) {
		t.Error("a password with a colon was refused")
	}
	for name, c := range map[string]struct {
		text string
		mode os.FileMode
		want string
	}{
		"open":  {"a:b\n", 0o644, "mode 0644 lets others read"},
		"bad":   {"a:b\nnocolon\n", 0o600, "line 2: want user:password"},
		"empty": {"# nothing\n", 0o600, "no user:password line"},
	} {
		_, err := LoadCredentials(write(name, c.text, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "a:b") {
			t.Errorf("%s: %v, want %q and no secret", name, err, c.want)
		}
	}
	if _, err := LoadCredentials(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}
