package status

import "github.com/practable/lablog/internal/led"

// LEDState maps a snapshot to the LED: losing data (a stream not connected,
// or the writer stalled) blinks fast and wins over the archive drive being
// unavailable (solid), which loses nothing yet; otherwise a heartbeat.
func LEDState(s Snapshot) led.State {
	if s.Buffer.WriterStalled {
		return led.Blink
	}
	for _, st := range s.Streams {
		if st.State != StateConnected && st.State != StateTokenExpiring {
			return led.Blink
		}
	}
	if !s.Archive.Available {
		return led.Solid
	}
	return led.Heartbeat
}
