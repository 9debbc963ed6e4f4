package bench

import (
	"bytes"
	"strings"
	"testing"
)

// Frames the bench writes by hand must read back, through a real websocket
// client, as exactly what was sent, at every length encoding.
func TestAppendFrameReadsBack(t *testing.T) {
	s, err := newServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	payloads := [][]byte{[]byte(`{"user":"a"}`), bytes.Repeat([]byte("x"), 200), []byte(strings.Repeat("y", 70000))}
	conn := dialTest(t, s, "spin000")
	for _, p := range payloads {
		s.sendRaw("spin000", appendFrame(nil, opText, p), 1, 1, int64(len(p)))
		_, got, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("read %d bytes, want the %d sent", len(got), len(p))
		}
	}
	if st := s.sent(); st.frames != 3 || st.failed != 0 {
		t.Fatalf("sent %+v, want 3 frames, none failed", st)
	}
}
