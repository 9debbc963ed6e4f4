package source

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff computes reconnect waits with full jitter: the n-th wait in a row is
// uniform in [0, min(Max, Min*2^n)]. Jitter spreads the reconnects of many
// streams after the relay restarts. It is not safe for concurrent use.
type Backoff struct {
	Min, Max    time.Duration
	StableAfter time.Duration       // a connection lasting this long resets the backoff
	Rand        func(n int64) int64 // uniform in [0, n); nil means math/rand/v2
	attempt     int
}

// Ceiling is the upper bound of the next wait.
func (b *Backoff) Ceiling() time.Duration {
	if b.Min <= 0 {
		return 0
	}
	c := b.Min
	// Doubling stops at Max, so the loop is short and cannot overflow.
	for i := 0; i < b.attempt && c < b.Max; i++ {
		if c > b.Max/2 {
			return b.Max
		}
		c *= 2
	}
	return min(c, b.Max)
}

// Next returns the next wait and moves on to a longer ceiling.
func (b *Backoff) Next() time.Duration {
	c := b.Ceiling()
	b.attempt++
	if c <= 0 {
		return 0
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	n := int64(c)
	if n < math.MaxInt64 {
		n++ // c itself is a possible wait
	}
	return time.Duration(rnd(n))
}

// Ended tells the backoff that a connection ended after lasting d: a stable
// one resets it, so a rare drop is retried quickly.
func (b *Backoff) Ended(d time.Duration) {
	if d >= b.StableAfter {
		b.Reset()
	}
}

// Reset starts over from Min.
func (b *Backoff) Reset() { b.attempt = 0 }
