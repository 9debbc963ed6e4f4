package source

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff computes reconnect waits with full jitter: the n-th wait in a row is
// uniform in [0, min(Max, Min*2^n)]. Jitter spreads the reconnects of many
// streams after the relay restarts. It is not safe for concurrent use.
//
// A working connection (one that lasted FastAfter) that ends is most likely
// a relay restart, which is over in seconds: the waits after it stay
// uniform in [FastMax/2, FastMax] until they add up to FastFor, so the
// stream is back within about FastMax of the relay, and a relay that stays
// down gets at most 2*FastFor/FastMax dials per stream before the doubling
// waits take over where they were (from Min after a stable connection). A
// relay that accepts and drops at once opens no window.
type Backoff struct {
	Min, Max    time.Duration
	StableAfter time.Duration       // a connection lasting this long resets the backoff
	FastAfter   time.Duration       // a connection lasting this long opens the fast window
	FastMax     time.Duration       // cap of the waits in the fast window; 0: none
	FastFor     time.Duration       // how much waiting they may add up to; <= 0: none
	Rand        func(n int64) int64 // uniform in [0, n); nil means math/rand/v2
	attempt     int
	fastLeft    time.Duration // of FastFor
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
	if f := min(b.FastMax, b.Max); f > 0 && b.fastLeft > 0 {
		w := f/2 + b.uniform(f-f/2)
		b.fastLeft -= w
		return w
	}
	c := b.Ceiling()
	b.attempt++
	return b.uniform(c)
}

// uniform is uniform in [0, c].
func (b *Backoff) uniform(c time.Duration) time.Duration {
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

// Ended tells the backoff that a connection ended after lasting d: a
// working one opens the fast window, so a relay restart is retried
// quickly, and a stable one also resets the doubling.
func (b *Backoff) Ended(d time.Duration) {
	if d >= b.FastAfter {
		b.fastLeft = b.FastFor
	}
	if d >= b.StableAfter {
		b.Reset()
	}
}

// Reset starts over from Min.
func (b *Backoff) Reset() { b.attempt = 0 }
