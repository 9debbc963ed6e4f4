package labsim

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const wait = 10 * time.Second

func newHost(t *testing.T) *Host {
	t.Helper()
	h, err := NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

type received struct {
	data   []byte
	binary bool
}

// client is a local websocket client of a Host that collects what it reads.
type client struct {
	conn   *websocket.Conn
	frames chan received
	err    chan error // the read error that ended it
}

func dial(t *testing.T, h *Host, stream string) *client {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(h.StreamURL(stream), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{conn: conn, frames: make(chan received, 100000), err: make(chan error, 1)}
	go func() {
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				c.err <- err
				return
			}
			c.frames <- received{data, typ == websocket.BinaryMessage}
		}
	}()
	return c
}

// read returns the next n frames.
func (c *client) read(t *testing.T, n int) []received {
	t.Helper()
	out := make([]received, 0, n)
	timeout := time.After(wait)
	for len(out) < n {
		select {
		case f := <-c.frames:
			out = append(out, f)
		case err := <-c.err:
			t.Fatalf("read %d of %d frames, then: %v", len(out), n, err)
		case <-timeout:
			t.Fatalf("read %d of %d frames in %v", len(out), n, wait)
		}
	}
	return out
}

// closed waits for the read error that ends the client.
func (c *client) closed(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.err:
		return err
	case <-time.After(wait):
		t.Fatalf("client still open after %v", wait)
	}
	return nil
}

// dialStreams connects one client per stream and waits until the host
// counts them.
func dialStreams(t *testing.T, h *Host, streams []string) map[string]*client {
	t.Helper()
	cs := map[string]*client{}
	for _, s := range streams {
		cs[s] = dial(t, h, s)
		if err := h.WaitClients(ctx(t), s, 1); err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

func ctxCancel(t *testing.T) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c, cancel
}
