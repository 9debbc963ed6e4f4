package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/testing/relaytest"
)

const wait = 10 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func newRelay(t *testing.T) *relaytest.Relay {
	t.Helper()
	r, err := relaytest.NewRelay(relaytest.RelayOptions{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// mint makes a token for r's topic with Mint, valid from an hour ago for
// lifetime.
func mint(t *testing.T, audience, topic string, lifetime time.Duration, scopes ...string) string {
	t.Helper()
	now := time.Now().Add(-time.Hour)
	tok, err := Mint(testSecret, Claims{Topic: topic, Scopes: scopes, BookingID: "lablog-" + topic, Audience: audience,
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(lifetime)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// noSecrets fails if err's text holds the token or the secret.
func noSecrets(t *testing.T, err error, tok string) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), string(testSecret)) {
		t.Fatalf("error %q leaks a credential", err)
	}
}

func TestAccessAgainstTheRelayDouble(t *testing.T) {
	r := newRelay(t)
	tok := mint(t, r.URL(), "spin30-log", 2*time.Hour, ScopeRead)
	uri, err := Access(ctx(t), nil, r.AccessURL("spin30-log"), tok)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(uri, nil)
	if err != nil {
		t.Fatalf("dialling the granted uri: %v", err)
	}
	conn.Close()
	if r.Answers(500) != 0 {
		t.Fatal("the relay saw a Bearer prefix")
	}

	for _, tc := range []struct {
		name            string
		topic, tok      string
		wrongTopic, exp bool
	}{
		{"wrong topic", "spin31-log", tok, true, false},
		{"expired", "spin30-log", mint(t, r.URL(), "spin30-log", 30*time.Minute, ScopeRead), false, true},
		{"wrong audience", "spin30-log", mint(t, "https://relay-access.practable.io", "spin30-log", 2*time.Hour, ScopeRead), false, false},
	} {
		_, err := Access(ctx(t), nil, r.AccessURL(tc.topic), tc.tok)
		var ae *AccessError
		if !errors.As(err, &ae) || ae.Status != 401 || !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v, want a 401 denial", tc.name, err)
		}
		if errors.Is(err, ErrWrongTopic) != tc.wrongTopic || errors.Is(err, ErrTokenExpired) != tc.exp {
			t.Errorf("%s: %v: wrong topic %v, expired %v", tc.name, err, errors.Is(err, ErrWrongTopic), errors.Is(err, ErrTokenExpired))
		}
		noSecrets(t, err, tc.tok)
	}
}

// The token goes raw in Authorization; replies the relay should not give
// are errors that name the problem without echoing credentials.
func TestAccessWireAndOddReplies(t *testing.T) {
	tok := mint(t, "http://x", "spin30-log", 2*time.Hour, ScopeRead)
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != tok {
			t.Errorf("request %s with Authorization %.20q..., want POST with the raw token", r.Method, r.Header.Get("Authorization"))
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		status int
		body   string
		want   string
		denied bool
	}{
		{500, "token unprocessable " + tok, "HTTP 500: token unprocessable [token]", false},
		{403, "forbidden", "HTTP 403: relay refused the token: forbidden", true},
		{400, `{"code":"400","message":"bookingID has been deny-listed"}`, "HTTP 400", true},
		{200, `{"url":"x"}`, "reply has no uri", false},
		{200, `{"uri":"https://relay/x?code=abc"}`, "not a ws or wss URL: https://relay/x", false},
	} {
		status, body = tc.status, tc.body
		_, err := Access(ctx(t), nil, srv.URL+"/session/spin30-log", tok)
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrDenied) != tc.denied {
			t.Errorf("HTTP %d %q: err %v, want %q (denied %v)", tc.status, tc.body, err, tc.want, tc.denied)
		}
		noSecrets(t, err, tok)
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("error %q holds a code", err)
		}
	}
	// A network failure names the endpoint without its query.
	_, err := Access(ctx(t), nil, "http://127.0.0.1:1/session/spin30-log?k=secretquery", tok)
	if err == nil || strings.Contains(err.Error(), "secretquery") || !strings.Contains(err.Error(), "127.0.0.1:1/session/spin30-log") {
		t.Fatalf("network error %v", err)
	}
	noSecrets(t, err, tok)
}
