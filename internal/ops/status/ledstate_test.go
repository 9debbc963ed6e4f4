package status

import (
	"testing"

	"github.com/practable/lablog/internal/ops/led"
)

func TestLEDState(t *testing.T) {
	ok := func() Snapshot {
		return Snapshot{
			Streams: []StreamStatus{{State: StateConnected}, {State: StateTokenExpiring}},
			Archive: ArchiveStatus{Available: true},
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*Snapshot)
		want led.State
	}{
		{"all well", func(*Snapshot) {}, led.Heartbeat},
		{"archive gone", func(s *Snapshot) { s.Archive.Available = false }, led.Solid},
		{"stream reconnecting", func(s *Snapshot) { s.Streams[0].State = StateReconnecting }, led.Blink},
		{"stream error and archive gone", func(s *Snapshot) { s.Streams[1].State = StateError; s.Archive.Available = false }, led.Blink},
		{"token expired", func(s *Snapshot) { s.Streams[1].State = StateTokenExpired }, led.Blink},
		{"connecting at start", func(s *Snapshot) { s.Streams[1].State = StateConnecting }, led.Blink},
		{"writer stalled", func(s *Snapshot) { s.Buffer.WriterStalled = true }, led.Blink},
	} {
		s := ok()
		tc.edit(&s)
		if got := LEDState(s); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
