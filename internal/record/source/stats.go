package source

import (
	"sync"
	"time"
)

// Stats is a snapshot of a source, for the status page.
type Stats struct {
	Stream    string
	Connected bool
	Since     time.Time // wall clock of the last connect or disconnect (or of Run's start)
	// LastError is why the stream is not connected now: the last dial
	// error or disconnect reason. A successful connection clears it (the
	// log keeps the history), so it never describes a past outage.
	LastError  string
	Connects   int64     // successful connections; 0 means never connected yet
	Reconnects int64     // successful connections after the first
	Frames     int64     // text and binary frames received
	Bytes      int64     // their total size
	Dropped    int64     // records the sink refused
	LastFrame  time.Time // wall clock of the last frame

	// State is StateConnecting, StateConnected, StateReconnecting, or, for
	// a stream stopped until someone acts, why: "token expired at
	// 2026-11-26 14:03:05 UTC", "token is for topic spin31-log, not
	// spin30-log", ...
	State string
	// TokenState is one of the Token* constants: TokenNone for a stream
	// without a relay token; TokenExpired, TokenWrongTopic and TokenInvalid
	// mean the stream is stopped (see State).
	TokenState string
	// TokenExpiry is when the stream's relay token expires; zero if none
	// or not known.
	TokenExpiry time.Time
}

// stats guards the Stats of a source; the read loop updates it and any
// goroutine may read it.
type stats struct {
	mu       sync.Mutex
	s        Stats
	connects int64
	stopped  string // the Blocked state while blocked
}

// snapshot fills in the states, which depend on the time: a token comes
// within warn of its expiry without any event.
func (st *stats) snapshot(now time.Time, warn time.Duration) Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	switch {
	case st.stopped != "":
		s.State = st.stopped
	case s.Connected:
		s.State = StateConnected
	case st.connects == 0:
		// Failed dials before the first connection are still connecting
		// (LastError says why it takes long).
		s.State = StateConnecting
	default:
		s.State = StateReconnecting
	}
	if st.stopped == "" && !s.TokenExpiry.IsZero() {
		switch left := s.TokenExpiry.Sub(now); {
		case left <= 0:
			s.TokenState = TokenExpired
		case left < warn:
			s.TokenState = TokenExpiring
		default:
			s.TokenState = TokenOK
		}
	}
	return s
}

// blocked records that the stream is stopped, and why.
func (st *stats) blocked(now time.Time, b *Blocked) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped != b.State {
		st.s.Since = now
	}
	st.stopped = b.State
	st.s.LastError = b.State
	st.s.TokenState = b.TokenState
	st.s.TokenExpiry = b.TokenExpiry
}

// token records a usable token (zero expiry: none) and ends a stop.
func (st *stats) token(expiry time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.stopped = ""
	st.s.TokenExpiry = expiry
	if expiry.IsZero() {
		st.s.TokenState = TokenNone
	}
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
	st.s.Connects = st.connects
	st.s.Reconnects = st.connects - 1
	st.s.Connected = true
	st.s.Since = now
	st.s.LastError = ""
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
