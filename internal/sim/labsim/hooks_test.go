package labsim

import (
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/gorilla/websocket"
)

// What a local client sends reaches FromClient (the host's upstream) as
// well as the other local clients; Handle adds routes; Streams lists them.
func TestHostFromClientHandleAndStreams(t *testing.T) {
	h := newHost(t)
	type sent struct {
		stream string
		data   string
		binary bool
	}
	up := make(chan sent, 10)
	h.FromClient = func(stream string, data []byte, binary bool) { up <- sent{stream, string(data), binary} }
	h.Handle("/api/x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "x") }))

	a, b := dial(t, h, "spin30"), dial(t, h, "spin30")
	if err := h.WaitClients(ctx(t), "spin30", 2); err != nil {
		t.Fatal(err)
	}
	if err := a.conn.WriteMessage(websocket.TextMessage, []byte(`{"cmd":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := b.read(t, 1); string(got[0].data) != `{"cmd":1}` {
		t.Fatalf("other local client got %q", got[0].data)
	}
	select {
	case s := <-up:
		if s != (sent{"spin30", `{"cmd":1}`, false}) {
			t.Fatalf("FromClient got %+v", s)
		}
	case <-ctx(t).Done():
		t.Fatal("FromClient not called")
	}
	resp, err := http.Get("http://" + h.Addr() + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "x" {
		t.Fatalf("extra route answered %q", body)
	}
	h.Publish("pend00", []byte("{}"), false)
	if got := h.Streams(); !slices.Equal(got, []string{"pend00", "spin30"}) {
		t.Fatalf("Streams() = %v", got)
	}
}
