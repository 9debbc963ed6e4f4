package labsim

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

func TestHostRefuse(t *testing.T) {
	h := newHost(t)
	h.Refuse("spin30", true)
	_, resp, err := websocket.DefaultDialer.Dial(h.StreamURL("spin30"), nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refused stream: err %v, resp %v; want a 503 handshake failure", err, resp)
	}
	if h.Clients("spin30") != 0 {
		t.Fatal("a refused client was counted")
	}
	dial(t, h, "spin31") // other streams are served
	if err := h.WaitClients(ctx(t), "spin31", 1); err != nil {
		t.Fatal(err)
	}
	h.Refuse("spin30", false)
	dial(t, h, "spin30")
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
}
