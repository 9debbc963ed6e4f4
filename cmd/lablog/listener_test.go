package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/lablogbin"
)

var statusPageURL = regexp.MustCompile(`msg="status page" url=(http://\S+)`)

// hostileDaemon runs the real binary recording one stream, with the
// status page's host names set to hosts (YAML list), and returns it with
// its status URL.
func hostileDaemon(t *testing.T, hosts string) (pid int, url string) {
	t.Helper()
	host := newTestHost(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\n"+
		"status: {listen: \"127.0.0.1:0\", hosts: %s}\nled: {path: \"\"}\nstreams:\n  - {name: spin30, relay_host: %s}\n",
		filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive"), hosts, host.URL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, log := startDaemon(t, cfgPath, `msg="status page"`)
	m := statusPageURL.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no status URL in the log:\n%s", log)
	}
	return cmd.Process.Pid, m[1]
}

// The status listener under a few hundred hostile connections from 25
// clients: idle keep-alives and headers that never end (each trying to
// send 1 MiB). The server holds each cheaply, closes the half-sent ones
// at its header limit, and the page still answers another client at once.
func TestStatusListenerBoundedUnderHostileConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 400 connections to the real binary")
	}
	pid, url := hostileDaemon(t, "[]")
	addr := strings.TrimPrefix(url, "http://")
	_, before := lablogbin.Memory(t, pid)

	const clients, idlePer, halfPer = 25, 8, 8
	var conns []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	var cutOff, answered int
	for c := 0; c < clients; c++ {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(c+1))}
		for i := 0; i < idlePer+halfPer; i++ {
			conn, err := (&net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}).Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
			wg.Add(1)
			go func(conn net.Conn, half bool) {
				defer wg.Done()
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				if !half {
					// One request, then idle on a keep-alive connection.
					io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
					if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
						resp.Body.Close()
						mu.Lock()
						answered++
						mu.Unlock()
					}
					return
				}
				// Headers that never end: the server must stop reading
				// long before 1 MiB and answer 431. What it does not read
				// stays in the kernel's socket buffers, not in lablog.
				status := make(chan string, 1)
				go func() {
					line, _ := bufio.NewReader(conn).ReadString('\n')
					status <- line
				}()
				io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n")
				junk := "X-Junk: " + strings.Repeat("j", 1000) + "\r\n"
				for sent := 0; sent < 1<<20; sent += len(junk) {
					if _, err := io.WriteString(conn, junk); err != nil {
						break // the server closed the connection
					}
				}
				if strings.Contains(<-status, " 431 ") {
					mu.Lock()
					cutOff++
					mu.Unlock()
				}
			}(conn, i >= idlePer)
		}
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	_, during := lablogbin.Memory(t, pid)
	t.Logf("RSS %.1f MiB before, %.1f MiB with %d connections held (%d idle answered, %d half-sent answered 431)",
		before, during, len(conns), answered, cutOff)
	if answered != clients*idlePer {
		t.Errorf("%d of %d keep-alive requests answered", answered, clients*idlePer)
	}
	if cutOff != clients*halfPer {
		t.Errorf("%d of %d connections sending 1 MiB of headers were answered 431", cutOff, clients*halfPer)
	}
	if grew := during - before; grew > 24 {
		t.Errorf("RSS grew by %.1f MiB with %d hostile connections, want < 24 MiB", grew, len(conns))
	}
	// The page answers another client while all of that is held.
	start := time.Now()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url + "/")
	if err != nil {
		t.Fatalf("the page under load: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the page under load: %d", resp.StatusCode)
	}
	t.Logf("the page answered in %v", time.Since(start))

	// One client may not hold more than its share: the 33rd connection
	// from one address is closed at once.
	one := &net.TCPAddr{IP: net.IPv4(127, 0, 2, 1)}
	for i := 0; i < 33; i++ {
		conn, err := (&net.Dialer{LocalAddr: one}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		if i < 32 {
			continue
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("the 33rd connection from one address was not closed (%v)", err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A request naming another host (what a DNS-rebinding page sends) reads
// nothing and acknowledges nothing; a configured name works.
func TestStatusListenerChecksHost(t *testing.T) {
	_, url := hostileDaemon(t, "[lablog.lab.example]")
	do := func(method, path, host string) int {
		req, _ := http.NewRequest(method, url+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	port := url[strings.LastIndex(url, ":")+1:]
	for _, c := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/api/status", "rebind.example:" + port, http.StatusMisdirectedRequest},
		{"POST", "/api/faults/ack", "rebind.example:" + port, http.StatusMisdirectedRequest},
		{"GET", "/api/status", "lablog.lab.example:" + port, http.StatusOK},
		{"GET", "/api/status", "localhost:" + port, http.StatusOK},
	} {
		if got := do(c.method, c.path, c.host); got != c.want {
			t.Errorf("%s %s with Host %s: %d, want %d", c.method, c.path, c.host, got, c.want)
		}
	}
}
