package bench

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialTest connects a client to stream and waits until the server has it.
func dialTest(t *testing.T, s *server, stream string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, s.url(stream), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := s.waitClients(ctx, []string{stream}); err != nil {
		t.Fatal(err)
	}
	return conn
}
