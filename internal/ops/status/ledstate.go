package status

import "github.com/practable/lablog/internal/ops/led"

// LEDState maps a snapshot to the LED: losing data (a stream not connected,
// the writer stalled, frames refused: a failing fault) blinks fast and wins
// over the archive drive being unavailable or a fault to acknowledge
// (solid), which lose nothing now; otherwise a heartbeat.
func LEDState(s Snapshot) led.State {
	if s.Buffer.WriterStalled {
		return led.Blink
	}
	for _, st := range s.Streams {
		if st.State != StateConnected && st.State != StateTokenExpiring {
			return led.Blink
		}
	}
	for _, f := range s.Faults {
		if f.Level == HealthFailing {
			return led.Blink
		}
	}
	if !s.Archive.Available || len(s.Faults) > 0 {
		return led.Solid
	}
	return led.Heartbeat
}
