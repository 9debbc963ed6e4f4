package httpserve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// start serves h on a loopback port with o, stopped at the test's end.
func start(t *testing.T, h http.Handler, o Options) *Server {
	t.Helper()
	s, err := New("127.0.0.1:0", h, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })

// get sends one request with the given Host header and returns the answer.
func get(t *testing.T, s *Server, host string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL()+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestHostCheck(t *testing.T) {
	s := start(t, hello, Options{Hosts: []string{"Lablog.Lab.Example"}})
	name, _ := os.Hostname()
	for _, c := range []struct {
		host string
		want int
	}{
		{s.Addr().String(), 200},
		{"localhost", 200},
		{"LOCALHOST:8080", 200},
		{"[::1]:80", 200},
		{"10.1.2.3", 200},
		{"lablog.lab.example.", 200},
		{"lablog.lab.example:443", 200},
		{name, 200},
		{name + ".local", 200},
		{"evil.example", http.StatusMisdirectedRequest},
		{"evil.example:" + strings.Split(s.Addr().String(), ":")[1], http.StatusMisdirectedRequest},
		{"localhost.evil.example", http.StatusMisdirectedRequest},
	} {
		if got := get(t, s, c.host).StatusCode; got != c.want {
			t.Errorf("Host %q: status %d, want %d", c.host, got, c.want)
		}
	}
	any := start(t, hello, Options{Hosts: []string{"*"}})
	if got := get(t, any, "anything.example").StatusCode; got != 200 {
		t.Errorf(`Hosts ["*"]: status %d for any name, want 200`, got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", PageCSP("abc"))
	})
	mux := http.NewServeMux()
	mux.Handle("/", hello)
	mux.Handle("/page", page)
	s := start(t, mux, Options{})
	resp, err := http.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, v := range map[string]string{
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": DefaultCSP,
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	resp, err = http.Get(s.URL() + "/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); got != PageCSP("abc") || !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("a handler's own policy: %q", got)
	}
}

// readEOF waits until the server closes c (a read returns an error) and
// fails the test if that takes longer than limit.
func readEOF(t *testing.T, c net.Conn, limit time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server did not close the connection within %v", what, limit)
	}
}

func TestIdleAndHalfSentConnectionsAreClosed(t *testing.T) {
	s := start(t, hello, Options{IdleTimeout: 200 * time.Millisecond, ReadHeaderTimeout: 200 * time.Millisecond})

	idle, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	readEOF(t, idle, 5*time.Second, "an idle keep-alive connection")

	half, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	io.WriteString(half, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
	readEOF(t, half, 5*time.Second, "a connection whose headers never end")
}

func TestHeaderSizeBounded(t *testing.T) {
	s := start(t, hello, Options{})
	req, _ := http.NewRequest("GET", s.URL()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: status %d, want 431", resp.StatusCode)
	}
}

// dialFrom opens a connection to addr from the loopback address local, so
// one test can play several clients.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnectionsCappedPerClient(t *testing.T) {
	const perClient = 4
	s := start(t, hello, Options{MaxConnsPerClient: perClient})
	addr := s.Addr().String()
	// perClient connections from one client are served (each answers)...
	for i := 0; i < perClient; i++ {
		c := dialFrom(t, "127.0.0.2", addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
	}
	// ...one more from it is closed at once...
	extra := dialFrom(t, "127.0.0.2", addr)
	readEOF(t, extra, 5*time.Second, "a connection over the client's cap")
	// ...while another client is served.
	if got := get(t, s, "localhost").StatusCode; got != 200 {
		t.Fatalf("another client: status %d", got)
	}

	// A reverse proxy carries many clients: it is not capped.
	proxied := start(t, hello, Options{MaxConnsPerClient: perClient, Proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
	for i := 0; i < 3*perClient; i++ {
		c := dialFrom(t, "127.0.0.3", proxied.Addr().String())
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("proxy connection %d: %v %v", i, resp, err)
		}
	}
}

func TestConnectionsCappedInAll(t *testing.T) {
	s := start(t, hello, Options{MaxConns: 3})
	addr := s.Addr().String()
	held := []net.Conn{dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.3", addr), dialFrom(t, "127.0.0.4", addr)}
	for _, c := range held {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection: %v %v", resp, err)
		}
	}
	// A fourth waits in the backlog: no answer while three are held...
	waiting := dialFrom(t, "127.0.0.5", addr)
	io.WriteString(waiting, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	waiting.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := waiting.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection over the cap was served while the cap was reached")
	}
	// ...and is served as soon as one of them closes.
	held[0].Close()
	waiting.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(waiting), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting connection after one closed: %v %v", resp, err)
	}
}

func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{
		":80":          "127.0.0.1:80",
		"0.0.0.0:8080": "127.0.0.1:8080",
		"[::]:8080":    "127.0.0.1:8080",
		"10.0.0.5:80":  "10.0.0.5:80",
		"[::1]:80":     "[::1]:80",
		"bad":          "bad",
	} {
		if got := LocalAddr(in); got != want {
			t.Errorf("LocalAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
