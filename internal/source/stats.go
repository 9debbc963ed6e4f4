package source

import (
	"sync"
	"time"
)

// Stats is a snapshot of a source, for the status page.
type Stats struct {
	Stream     string
	Connected  bool
	Since      time.Time // wall clock of the last connect or disconnect (or of Run's start)
	LastError  string    // last dial error or disconnect reason; kept after a reconnect
	Reconnects int64     // successful connections after the first
	Frames     int64     // text and binary frames received
	Bytes      int64     // their total size
	Dropped    int64     // records the sink refused
	LastFrame  time.Time // wall clock of the last frame
}

// stats guards the Stats of a source; the read loop updates it and any
// goroutine may read it.
type stats struct {
	mu       sync.Mutex
	s        Stats
	connects int64
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

func (st *stats) started(now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Since = now
}

func (st *stats) connected(now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.connects++
	st.s.Reconnects = st.connects - 1
	st.s.Connected = true
	st.s.Since = now
}

// disconnected records the end of a connection; an empty errText (a normal
// shutdown) keeps the previous LastError.
func (st *stats) disconnected(now time.Time, errText string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Connected = false
	st.s.Since = now
	if errText != "" {
		st.s.LastError = errText
	}
}

func (st *stats) failed(err string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.LastError = err
}

func (st *stats) frame(now time.Time, size int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Frames++
	st.s.Bytes += int64(size)
	st.s.LastFrame = now
}

func (st *stats) dropped() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Dropped++
	return st.s.Dropped
}
