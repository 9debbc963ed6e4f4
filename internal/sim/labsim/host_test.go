package labsim

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

func TestHostPassesFramesRawToEveryClient(t *testing.T) {
	h := newHost(t)
	a, b := dial(t, h, "spin30"), dial(t, h, "spin30")
	other := dial(t, h, "spin31")
	if err := h.WaitClients(ctx(t), "spin30", 2); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitClients(ctx(t), "spin31", 1); err != nil {
		t.Fatal(err)
	}
	frames := []received{
		{[]byte(`{"user":"u","t":1}`), false},
		{[]byte(`{"a":1}{"b": NaN}`), false},
		{[]byte{}, false},
		{[]byte("\xff\xfe not utf-8"), false},
		{[]byte{0, 1, 2, 3, 255}, true},
	}
	for _, f := range frames {
		h.Publish("spin30", f.data, f.binary)
	}
	for name, c := range map[string]*client{"a": a, "b": b} {
		got := c.read(t, len(frames))
		for i := range frames {
			if !bytes.Equal(got[i].data, frames[i].data) || got[i].binary != frames[i].binary {
				t.Errorf("client %s frame %d: got %q binary=%v, want %q binary=%v",
					name, i, got[i].data, got[i].binary, frames[i].data, frames[i].binary)
			}
		}
	}
	// Publish waited for both writes, so Delivered is complete: each frame
	// once per client.
	d := h.Delivered("spin30")
	if len(d) != 2*len(frames) || h.DeliveredCount("spin30") != int64(len(d)) {
		t.Fatalf("delivered %d (count %d), want %d", len(d), h.DeliveredCount("spin30"), 2*len(frames))
	}
	for i, f := range d {
		if !bytes.Equal(f, frames[i/2].data) {
			t.Fatalf("delivered %d = %q, want %q", i, f, frames[i/2].data)
		}
	}
	select {
	case f := <-other.frames:
		t.Fatalf("a client of another stream got %q", f.data)
	default:
	}
	if h.Delivered("spin31") != nil || h.Lost("spin30") != 0 {
		t.Fatal("unexpected deliveries or losses")
	}
}

func TestHostForwardsWhatAClientSends(t *testing.T) {
	h := newHost(t)
	a, b := dial(t, h, "pend00"), dial(t, h, "pend00")
	if err := h.WaitClients(ctx(t), "pend00", 2); err != nil {
		t.Fatal(err)
	}
	if err := a.conn.WriteMessage(websocket.TextMessage, []byte("from a")); err != nil {
		t.Fatal(err)
	}
	if got := b.read(t, 1)[0]; string(got.data) != "from a" || got.binary {
		t.Fatalf("b got %q", got.data)
	}
	h.Publish("pend00", []byte("marker"), false)
	// a is not sent its own frame: the marker is the next thing it reads.
	if got := a.read(t, 1)[0]; string(got.data) != "marker" {
		t.Fatalf("a got %q, want the marker", got.data)
	}
}

func TestHostHealthcheck(t *testing.T) {
	h := newHost(t)
	resp, err := http.Get("http://" + h.Addr() + "/healthcheck")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// The real relay host answers the JSON string "ok": bytes 22 6f 6b 22 0a.
	if resp.StatusCode != http.StatusOK || string(body) != "\"ok\"\n" {
		t.Fatalf("healthcheck: %d %q", resp.StatusCode, body)
	}
}

func TestHostStreamNames(t *testing.T) {
	h := newHost(t)
	for _, path := range []string{"/ws/", "/ws/api", "/ws/spin%2030", "/ws/spin_30", "/ws/spin.30", "/other"} {
		_, resp, err := websocket.DefaultDialer.Dial(h.URL()+path, nil)
		if err == nil {
			t.Errorf("%s: accepted", path)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %v, want 404", path, err)
		}
	}
	for _, s := range []string{"spin30", "a/b-C9", "spin30-log", "api2"} {
		c := dial(t, h, s)
		if err := h.WaitClients(ctx(t), s, 1); err != nil {
			t.Fatal(err)
		}
		h.Publish(s, []byte(s), false)
		if got := c.read(t, 1)[0]; string(got.data) != s {
			t.Fatalf("%s: got %q", s, got.data)
		}
	}
}

func TestHostDropClientsCutsWithoutCloseFrame(t *testing.T) {
	h := newHost(t)
	c := dial(t, h, "spin30")
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	h.DropClients("spin30")
	if n := h.Clients("spin30"); n != 0 {
		t.Fatalf("%d clients after DropClients", n)
	}
	err := c.closed(t)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
		t.Fatalf("client read error %v, want abnormal closure", err)
	}
	h.Publish("spin30", []byte("nobody"), false) // no client: nothing delivered
	if h.DeliveredCount("spin30") != 0 {
		t.Fatal("delivered to a dropped client")
	}
}

func TestHostLossyDeliveredMatchesWhatWasRead(t *testing.T) {
	h := newHost(t)
	h.Lossy = true
	c := dial(t, h, "spin30")
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		h.Publish("spin30", []byte{byte(i), byte(i >> 8)}, true)
	}
	if err := h.WaitIdle(ctx(t), "spin30"); err != nil {
		t.Fatal(err)
	}
	d := h.Delivered("spin30")
	if int64(len(d))+h.Lost("spin30") != n {
		t.Fatalf("delivered %d + lost %d != published %d", len(d), h.Lost("spin30"), n)
	}
	t.Logf("lossy: delivered %d, lost %d of %d", len(d), h.Lost("spin30"), n)
	got := c.read(t, len(d))
	for i := range d {
		if !bytes.Equal(got[i].data, d[i]) {
			t.Fatalf("frame %d read %x, delivered %x", i, got[i].data, d[i])
		}
	}
	select {
	case f := <-c.frames:
		t.Fatalf("read a frame not counted as delivered: %x", f.data)
	default:
	}
}

func TestHostCountOnly(t *testing.T) {
	h := newHost(t)
	h.CountOnly = true
	c := dial(t, h, "spin30")
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		h.Publish("spin30", []byte("x"), false)
	}
	c.read(t, 10)
	if h.Delivered("spin30") != nil || h.DeliveredCount("spin30") != 10 {
		t.Fatalf("delivered %d frames kept, count %d", len(h.Delivered("spin30")), h.DeliveredCount("spin30"))
	}
}

func TestHostHangNeverAnswers(t *testing.T) {
	h := newHost(t)
	h.Hang(true)
	c := dial(t, h, "spin30") // the handshake completes
	if n := h.Clients("spin30"); n != 0 {
		t.Fatalf("a hung connection counts as %d clients", n)
	}
	h.Publish("spin30", []byte("x"), false)
	if h.DeliveredCount("spin30") != 0 {
		t.Fatal("delivered to a hung connection")
	}
	h.DropClients("spin30") // ends hung connections too
	if err := c.closed(t); err == nil {
		t.Fatal("hung connection survived DropClients")
	}
}

func TestHostCloseEndsClients(t *testing.T) {
	h, err := NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, h, "spin30")
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	h.Hang(true)
	hung := dial(t, h, "spin30")
	h.Close() // returns only after the host's goroutines ended
	for _, cl := range []*client{c, hung} {
		if err := cl.closed(t); err == nil {
			t.Fatal("client survived Close")
		}
	}
}
