package addlog

import (
	"sync"
	"time"
)

// failureLimit counts failed logins per client in fixed windows, so a
// guesser is slowed to a few tries a minute while honest UIs, which
// never fail, are never touched.
type failureLimit struct {
	max    int
	window time.Duration

	mu      sync.Mutex
	start   time.Time
	clients map[string]int
}

// maxTracked bounds the memory a flood of addresses can take: past it the
// window starts again early.
const maxTracked = 4096

func newFailureLimit(max int, window time.Duration) *failureLimit {
	return &failureLimit{max: max, window: window, clients: map[string]int{}}
}

func (l *failureLimit) roll(now time.Time) {
	if now.Sub(l.start) >= l.window || len(l.clients) >= maxTracked {
		clear(l.clients)
		l.start = now
	}
}

// blocked reports whether client has used up its failures in this window.
func (l *failureLimit) blocked(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	return l.clients[client] >= l.max
}

// fail counts one failure of client.
func (l *failureLimit) fail(client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.clients[client]++
}

// retryAfter is how long until the window ends.
func (l *failureLimit) retryAfter(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(time.Second, l.start.Add(l.window).Sub(now))
}
