package relaytest

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/testing/testkit"
)

func TestAccessGrantsOneTimeURIOnTheHub(t *testing.T) {
	r := newRelay(t, nil)
	u, err := url.Parse(uri(t, r, "spin30-log", token(r, "spin30-log", "read")))
	if err != nil {
		t.Fatal(err)
	}
	access, _ := url.Parse(r.URL())
	if u.Scheme != "ws" || u.Host == access.Host || u.Path != "/session/spin30-log" {
		t.Fatalf("uri %s: want ws://<hub, not the access host>/session/spin30-log", u)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(u.Query().Get("code")) {
		t.Fatalf("code %q is not a uuid", u.Query().Get("code"))
	}
}

// Each refusal the real relay makes, with its status.
func TestAccessAnswers(t *testing.T) {
	r := newRelay(t, nil)
	good := token(r, "spin30-log", "read")
	now := time.Now()
	for _, tc := range []struct {
		name, topic, auth string
		status            int
		body              string
	}{
		{"no header", "spin30-log", "", 401, ""},
		{"bearer prefix", "spin30-log", "Bearer " + good, 500, ""},
		{"not a jwt", "spin30-log", "garbage", 401, ""},
		{"wrong secret", "spin30-log", Token([]byte("other"), TokenSpec{Topic: "spin30-log", Scopes: []string{"read"}, BookingID: "b", Audience: r.URL()}), 401, ""},
		{"wrong audience", "spin30-log", Token(secret, TokenSpec{Topic: "spin30-log", Scopes: []string{"read"}, BookingID: "b", Audience: "https://relay-access.practable.io"}), 401, ""},
		{"expired", "spin30-log", Token(secret, TokenSpec{Topic: "spin30-log", Scopes: []string{"read"}, BookingID: "b", Audience: r.URL(),
			IssuedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)}), 401, ""},
		{"wrong topic", "spin31-log", good, 401, "Token Wrong Topic"},
		{"no scopes", "spin30-log", token(r, "spin30-log"), 401, "Missing Required Claims"},
		{"empty booking id", "spin30-log", Token(secret, TokenSpec{Topic: "spin30-log", Scopes: []string{"read"}, Audience: r.URL()}), 400, "empty bookingID"},
	} {
		status, body := post(t, r.AccessURL(tc.topic), tc.auth)
		if status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: HTTP %d %q, want %d with %q", tc.name, status, body, tc.status, tc.body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, r.AccessURL("spin30-log"), nil)
	req.Header.Set("Authorization", good)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET access: HTTP %d, want 405", resp.StatusCode)
	}
}

func TestCodeIsSingleUseAndExpiresIn30s(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	r := newRelay(t, clk.Now)
	tok := token(r, "spin30-log", "read")
	u := uri(t, r, "spin30-log", tok)
	dialPeer(t, u)
	if _, resp, err := websocket.DefaultDialer.Dial(u, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("second use of a code: err %v, want HTTP 401", err)
	}
	// Within 30 s a code works; after, it does not.
	u = uri(t, r, "spin30-log", tok)
	clk.Set(clk.Now().Add(CodeLife - time.Second))
	dialPeer(t, u)
	u = uri(t, r, "spin30-log", tok)
	clk.Set(clk.Now().Add(CodeLife + time.Second))
	if _, resp, err := websocket.DefaultDialer.Dial(u, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("code after 31 s: err %v, want HTTP 401", err)
	}
	// A code is for its topic only.
	u = uri(t, r, "spin30-log", tok)
	if _, resp, err := websocket.DefaultDialer.Dial(strings.Replace(u, "spin30-log", "spin31-log", 1), nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("code on another topic: err %v, want HTTP 401", err)
	}
}

// Messages go to every other reader; the sender gets nothing back; without
// read a client receives nothing, without write it cannot send.
func TestScopesAndSenderExclusion(t *testing.T) {
	r := newRelay(t, nil)
	ui := joinTopic(t, r, "spin30-log", "read", "write")
	logger := joinTopic(t, r, "spin30-log", "read")
	dash := joinTopic(t, r, "spin30-log", "read", "write")
	writer := joinTopic(t, r, "spin30-log", "write")
	other := joinTopic(t, r, "spin31-log", "read")
	if err := r.WaitClients(ctx(t), "spin30-log", 4); err != nil {
		t.Fatal(err)
	}
	ui.send(t, `{"from":"ui"}`)
	if got := logger.next(t); got != `{"from":"ui"}` {
		t.Fatalf("logger got %q", got)
	}
	if got := dash.next(t); got != `{"from":"ui"}` {
		t.Fatalf("dashboard got %q", got)
	}
	writer.send(t, `{"from":"writer"}`)
	if got := ui.next(t); got != `{"from":"writer"}` {
		t.Fatalf("ui got %q, want the writer's message (and not its own)", got)
	}
	logger.next(t)
	dash.next(t)
	logger.send(t, `{"from":"logger"}`) // read only: goes nowhere
	dash.send(t, `{"marker":1}`)
	if got := logger.next(t); got != `{"marker":1}` {
		t.Fatalf("logger got %q, want only the marker", got)
	}
	if got := ui.next(t); got != `{"marker":1}` {
		t.Fatalf("ui got %q: a read-only client's message went through", got)
	}
	writer.nothing(t, 50*time.Millisecond)
	other.nothing(t, 50*time.Millisecond)
	if err := r.WaitReceived(ctx(t), 3); err != nil { // ui, writer, dash: the read-only one does not count
		t.Fatal(err)
	}
	if err := r.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// logger, dash, ui, logger, dash, logger, ui: 7 frames to readers.
	if n := r.DeliveredCount("spin30-log"); n != 7 {
		t.Fatalf("delivered %d frames, want 7", n)
	}
}

// Messages queued for a client go out as one frame with no separator.
func TestQueuedMessagesAreGluedIntoOneFrame(t *testing.T) {
	r := newRelay(t, nil)
	ui := joinTopic(t, r, "spin30-log", "write")
	logger := joinTopic(t, r, "spin30-log", "read")
	if err := r.WaitClients(ctx(t), "spin30-log", 2); err != nil {
		t.Fatal(err)
	}
	r.HoldWrites(true)
	msgs := []string{`{"n":1}`, `{"n":2,"v":NaN}`, `{"n":3}`}
	for _, m := range msgs {
		ui.send(t, m)
	}
	// The writer took the first message and waits; the rest queue.
	if err := r.await(ctx(t), func() bool { return r.inflight == 3 }); err != nil {
		t.Fatal(err)
	}
	r.HoldWrites(false)
	if got, want := logger.next(t), strings.Join(msgs, ""); got != want {
		t.Fatalf("got %q, want one frame %q", got, want)
	}
	if err := r.WaitIdle(ctx(t)); err != nil {
		t.Fatal(err)
	}
	d := r.Delivered("spin30-log")
	if len(d) != 1 || string(d[0]) != strings.Join(msgs, "") {
		t.Fatalf("delivered %q", d)
	}
}

func TestRelayClosesConnectionWhenTokenExpires(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	r := newRelay(t, clk.Now)
	exp := clk.Now().Add(time.Hour).Truncate(time.Second)
	tok := Token(secret, TokenSpec{Topic: "spin30-log", Scopes: []string{"read"}, BookingID: "b", Audience: r.URL(), ExpiresAt: exp})
	p := dialPeer(t, uri(t, r, "spin30-log", tok))
	if err := r.WaitClients(ctx(t), "spin30-log", 1); err != nil {
		t.Fatal(err)
	}
	// A second before expiry, a new client joins; both are cut at exp.
	clk.Set(exp.Add(-200 * time.Millisecond))
	q := dialPeer(t, uri(t, r, "spin30-log", tok))
	start := time.Now()
	err := q.ended(t)
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("late client ended with %v, want a close frame", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("cut %v after expiry", took)
	}
	_ = p // the first client's timer was set an hour ahead on the fake clock
	if status, _ := post(t, r.AccessURL("spin30-log"), tok); status != 200 {
		t.Fatalf("access before exp: %d", status)
	}
	clk.Set(exp)
	if status, _ := post(t, r.AccessURL("spin30-log"), tok); status != 401 {
		t.Fatalf("access at exp: %d, want 401", status)
	}
}

func TestStopCutsClientsAndForgetsCodes(t *testing.T) {
	r := newRelay(t, nil)
	tok := token(r, "spin30-log", "read")
	p := joinTopic(t, r, "spin30-log", "read")
	if err := r.WaitClients(ctx(t), "spin30-log", 1); err != nil {
		t.Fatal(err)
	}
	unused := uri(t, r, "spin30-log", tok)
	access := r.URL()
	r.Stop()
	p.ended(t)
	if _, err := http.Post(r.AccessURL("spin30-log"), "", nil); err == nil {
		t.Fatal("access answers while stopped")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if r.URL() != access {
		t.Fatalf("restarted on %s, was %s", r.URL(), access)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(unused, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("a code from before the restart: %v, want HTTP 401", err)
	}
	joinTopic(t, r, "spin30-log", "read")
	if err := r.WaitClients(ctx(t), "spin30-log", 1); err != nil {
		t.Fatal(err)
	}
}

func TestUIsPublishThroughTheRelay(t *testing.T) {
	r := newRelay(t, nil)
	uis := NewUIs(r, secret)
	defer uis.Close()
	logger := joinTopic(t, r, "spin30-log", "read")
	if err := uis.Connect(ctx(t), "spin30"); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitReaders(ctx(t), "spin30-log", 1); err != nil {
		t.Fatal(err)
	}
	uis.Publish("spin30", []byte(`{"a":1}`), false)
	if got := logger.next(t); got != `{"a":1}` {
		t.Fatalf("got %q", got)
	}
	r.Stop()
	// UIs has no event for it: the UI notices the drop on its next read.
	testkit.Eventually(t, wait, "the UI to notice the relay going away", func() bool { return !uis.Connected("spin30") })
	uis.Publish("spin30", []byte(`{"lost":1}`), false)
	if uis.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1", uis.Dropped())
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	logger = joinTopic(t, r, "spin30-log", "read")
	if err := r.WaitClients(ctx(t), "spin30-log", 1); err != nil {
		t.Fatal(err)
	}
	uis.Publish("spin30", []byte(`{"b":2}`), false) // joins again by itself
	if got := logger.next(t); got != `{"b":2}` {
		t.Fatalf("got %q", got)
	}
	if uis.Sent() != 2 {
		t.Fatalf("sent %d", uis.Sent())
	}
}

func TestReadersCountsOnlyReadScopes(t *testing.T) {
	r := newRelay(t, nil)
	joinTopic(t, r, "spin30-log", "write")
	p := joinTopic(t, r, "spin30-log", "read")
	// As on the real relay, a client joins its topic just after its
	// handshake: wait for both.
	if err := r.WaitClients(ctx(t), "spin30-log", 2); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitReaders(ctx(t), "spin30-log", 1); err != nil {
		t.Fatal(err)
	}
	p.conn.Close()
	if err := r.WaitReaders(ctx(t), "spin30-log", 0); err != nil {
		t.Fatal(err)
	}
	if r.Clients("spin30-log") != 1 {
		t.Fatalf("clients %d, want the writer", r.Clients("spin30-log"))
	}
}

// TestFullQueueDropsMessagesNotTheClient pins what the real relay does
// (internal/e2e/relay, TestBursts): a reader whose queue is full misses
// the messages that do not fit and stays connected. The double used to
// cut it instead.
func TestFullQueueDropsMessagesNotTheClient(t *testing.T) {
	r, err := NewRelay(RelayOptions{Secret: secret, Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ui := joinTopic(t, r, "spin30-log", "write")
	logger := joinTopic(t, r, "spin30-log", "read")
	if err := r.WaitClients(ctx(t), "spin30-log", 2); err != nil {
		t.Fatal(err)
	}
	r.HoldWrites(true)
	ui.send(t, `{"n":1}`)
	// The writer has taken n1 and waits, its queue empty.
	taken := func() bool {
		for c := range r.topics["spin30-log"].clients {
			if c.read && len(c.send) > 0 {
				return false
			}
		}
		return r.inflight == 1
	}
	if err := r.await(ctx(t), taken); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{`{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`} {
		ui.send(t, m)
	}
	// The writer holds n1, n2 and n3 fill the queue, n4 and n5 are dropped.
	if err := r.WaitReceived(ctx(t), 5); err != nil {
		t.Fatal(err)
	}
	if err := r.await(ctx(t), func() bool { return r.droppedOnFull == 2 }); err != nil {
		t.Fatalf("dropped %d, want 2: %v", r.DroppedOnFull(), err)
	}
	r.HoldWrites(false)
	if got := logger.next(t); got != `{"n":1}{"n":2}{"n":3}` {
		t.Fatalf("got %q, want n1 and the queued two glued, without n4 and n5", got)
	}
	if r.Clients("spin30-log") != 2 {
		t.Fatalf("the full reader was cut: %d clients left", r.Clients("spin30-log"))
	}
	ui.send(t, `{"n":6}`)
	if got := logger.next(t); got != `{"n":6}` {
		t.Fatalf("after the drop got %q, want the reader still served", got)
	}
}
