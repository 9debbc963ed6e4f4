// Package stall decides whether the buffer's writer is stuck. Both the
// systemd watchdog (which must stop petting a stuck writer, so systemd
// restarts lablog) and the status page use this one definition.
//
// The writer is stalled when, for longer than After, it has neither
// committed anything new nor been idle in good order, where idle in good
// order means its queue was empty and its last commit attempt succeeded.
// So a writer whose commits keep failing is stalled After later whether or
// not frames arrive, and a writer blocked inside a commit is stalled After
// after frames start to queue behind it. (A writer blocked mid-commit while
// nothing at all arrives looks idle: with an empty queue nothing is at risk.)
package stall

import (
	"fmt"
	"sync"
	"time"

	"github.com/practable/lablog/internal/record/buffer"
)

// DefaultAfter is short enough that systemd's WatchdogSec=30 ends a stuck
// lablog within a minute, and long enough to ride out an SD card's slowest
// fsync spikes and the writer's first retries.
const DefaultAfter = 20 * time.Second

// Detector tracks a writer's progress across observations. The zero value
// uses DefaultAfter. It is safe for concurrent use.
type Detector struct {
	After time.Duration

	mu       sync.Mutex
	started  bool
	commits  int64
	progress time.Time // last observation showing progress or good idleness
}

// Observe records st as seen at now and reports whether the writer is
// stalled, with the reason in words for the status page.
func (d *Detector) Observe(now time.Time, st buffer.WriterStats) (stalled bool, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	after := d.After
	if after <= 0 {
		after = DefaultAfter
	}
	// A full buffer refuses frames by design (the status says so loudly);
	// the writer itself works, and a restart would not make room.
	idleOK := st.Queued == 0 && (st.LastError == "" || st.Full)
	if !d.started || st.Commits != d.commits || idleOK {
		d.started = true
		d.commits = st.Commits
		d.progress = now
		return false, ""
	}
	stuck := now.Sub(d.progress)
	if stuck <= after {
		return false, ""
	}
	if st.LastError != "" {
		return true, fmt.Sprintf("writer: commits failing for %s: %s", roughly(stuck), st.LastError)
	}
	return true, fmt.Sprintf("writer: %d records queued and nothing committed for %s", st.Queued, roughly(stuck))
}

// roughly rounds d for people: whole seconds, or milliseconds under one.
func roughly(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
