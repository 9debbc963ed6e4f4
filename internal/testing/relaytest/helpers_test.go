package relaytest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wait bounds every wait of a test.
const wait = 10 * time.Second

var secret = []byte("test-secret-do-not-use")

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func newRelay(t *testing.T, now func() time.Time) *Relay {
	t.Helper()
	r, err := NewRelay(RelayOptions{Secret: secret, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func token(r *Relay, topic string, scopes ...string) string {
	return Token(secret, TokenSpec{Topic: topic, Scopes: scopes, BookingID: "b1", Audience: r.URL()})
}

// post runs the access request by hand and returns status and body.
func post(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// uri asks for access and returns the granted URI.
func uri(t *testing.T, r *Relay, topic, tok string) string {
	t.Helper()
	status, body := post(t, r.AccessURL(topic), tok)
	if status != http.StatusOK {
		t.Fatalf("access: %d %s", status, body)
	}
	var reply struct{ URI string }
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	return reply.URI
}

// peer is a websocket client collecting what it reads.
type peer struct {
	conn   *websocket.Conn
	frames chan string
	done   chan error
}

func dialPeer(t *testing.T, url string) *peer {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	t.Cleanup(func() { conn.Close() })
	p := &peer{conn: conn, frames: make(chan string, 1000), done: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				p.done <- err
				return
			}
			p.frames <- string(data)
		}
	}()
	return p
}

func joinTopic(t *testing.T, r *Relay, topic string, scopes ...string) *peer {
	t.Helper()
	p := dialPeer(t, uri(t, r, topic, token(r, topic, scopes...)))
	return p
}

func (p *peer) send(t *testing.T, msg string) {
	t.Helper()
	if err := p.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func (p *peer) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-p.frames:
		return f
	case err := <-p.done:
		t.Fatalf("connection ended: %v", err)
	case <-time.After(wait):
		t.Fatal("no frame")
	}
	return ""
}

// nothing checks that no frame arrives within d (for "must not receive").
func (p *peer) nothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case f := <-p.frames:
		t.Fatalf("unexpected frame %q", f)
	case <-time.After(d):
	}
}

// ended waits for the connection to end and returns the read error.
func (p *peer) ended(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(wait):
		t.Fatal("connection still open")
	}
	return nil
}
