// Package forwardtest is an upstream logging host double for tests of store
// and forward: an HTTP server on 127.0.0.1 that can be down (refusing
// connections), failing (500) or up (204), and that keeps every call it
// accepted. Only tests import it.
package forwardtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Mode is how the upstream answers.
type Mode int

const (
	Down    Mode = iota // nothing listens: connections are refused
	Failing             // every call is answered 500
	Up                  // every call is answered 204 and kept
)

// Call is one call the upstream accepted.
type Call struct {
	Path, Query string
	Body        []byte
	User, Pass  string
	ContentType string
	At          time.Time
}

// Upstream is the double. Its address stays the same across modes.
type Upstream struct {
	t    testing.TB
	addr string

	mu       sync.Mutex
	srv      *http.Server
	done     chan struct{}
	calls    []Call
	attempts int
	delay    time.Duration
}

// New starts an upstream in mode m on a free loopback port; it stops when
// the test ends.
func New(t testing.TB, m Mode) *Upstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{t: t, addr: ln.Addr().String()}
	_ = ln.Close()
	u.Set(m)
	t.Cleanup(func() { u.Set(Down) })
	return u
}

// URL is the upstream's base URL.
func (u *Upstream) URL() string { return "http://" + u.addr + "/" }

// Set switches the mode: Down closes the listener and every connection.
func (u *Upstream) Set(m Mode) {
	u.mu.Lock()
	srv, done := u.srv, u.done
	u.srv, u.done = nil, nil
	u.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-done
	}
	if m == Down {
		return
	}
	ln, err := listen(u.addr)
	if err != nil {
		u.t.Fatalf("upstream: %v", err)
	}
	srv = &http.Server{Handler: u.handler(m), ReadHeaderTimeout: 5 * time.Second}
	done = make(chan struct{})
	u.mu.Lock()
	u.srv, u.done = srv, done
	u.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// SetDelay makes every later answer take d: a slow upstream, so that a
// test can act while statements are being forwarded.
func (u *Upstream) SetDelay(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.delay = d
}

// listen listens on addr again: a port just closed may linger briefly.
func listen(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("listen %s again: %w", addr, err)
}

func (u *Upstream) handler(m Mode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.attempts++
		delay := u.delay
		u.mu.Unlock()
		time.Sleep(delay) // the upstream's own slowness
		if err != nil || m == Failing {
			http.Error(w, "upstream failing", http.StatusInternalServerError)
			return
		}
		user, pass, _ := r.BasicAuth()
		u.mu.Lock()
		u.calls = append(u.calls, Call{Path: r.URL.Path, Query: r.URL.RawQuery, Body: body, User: user, Pass: pass,
			ContentType: r.Header.Get("Content-Type"), At: time.Now()})
		u.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

// Calls returns the calls accepted so far, in arrival order.
func (u *Upstream) Calls() []Call {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Call(nil), u.calls...)
}

// Attempts counts every call received, whatever the answer.
func (u *Upstream) Attempts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.attempts
}

// Sent is a statement as a UI sent it: the query it is forwarded with and
// its body.
type Sent struct{ Query, Body string }

// Check holds calls (in arrival order) to store and forward's promise for
// want, the statements of each stream in commit order (key names a call's
// stream): each arrived at /addLog with its query and body byte for byte,
// the first arrivals of a stream in commit order. It returns the calls
// that repeat one already arrived (at least once allows them), and an
// error naming the first statement that broke the promise.
func Check(calls []Call, want map[string][]Sent, key func(Call) string) (dups []Call, err error) {
	next := map[string]int{}
	seen := map[Sent]bool{}
	for i, c := range calls {
		s := Sent{c.Query, string(c.Body)}
		if seen[s] {
			dups = append(dups, c)
			continue
		}
		k := key(c)
		n := next[k]
		if n >= len(want[k]) || want[k][n] != s || c.Path != "/addLog" {
			return dups, fmt.Errorf("call %d (%s %s?%s %q): want statement %d of %s in commit order", i, k, c.Path, c.Query, c.Body, n, k)
		}
		seen[s] = true
		next[k] = n + 1
	}
	for k, w := range want {
		if next[k] != len(w) {
			return dups, fmt.Errorf("%s: %d of %d statements arrived", k, next[k], len(w))
		}
	}
	return dups, nil
}
