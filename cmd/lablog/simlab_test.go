package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSimlabServesStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"simlab", "--listen", "127.0.0.1:0", "--streams", "spin30-31,pend00", "--rate", "50"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no banner: %v", err)
	}
	if !strings.Contains(line, "3 streams (spin30 ... pend00)") {
		t.Errorf("banner %q", line)
	}
	go io.Copy(io.Discard, pr)
	base := strings.TrimSpace(line[strings.Index(line, "ws://"):])
	base = strings.TrimSuffix(base, "/ws/<stream>")
	for _, s := range []string{"spin30", "spin31", "pend00"} {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, base+"/ws/"+s, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", s, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The simulated lab sends zero-length frames among the others on
		// purpose (BadFrames): wait for one with content.
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Errorf("%s: no frame with content: %v", s, err)
				break
			}
			if len(msg) > 0 {
				break
			}
		}
		c.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("simlab returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("simlab did not stop")
	}
}

func TestSimlabRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"simlab", "--listen", "0.0.0.0:0"},
		{"simlab", "--listen", ":8888"},
		{"simlab", "--listen", "127.0.0.1:0", "--streams", "bad name"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
