package source

import (
	"math"
	"testing"
	"time"
)

func TestBackoffCeilingsDoubleUpToMax(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 60 * time.Second, Rand: func(n int64) int64 { return n - 1 }}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if got := b.Next(); got != w*time.Second {
			t.Fatalf("wait %d with the largest draw = %v, want %v", i, got, w*time.Second)
		}
	}
	for range 1000 { // many failures must neither overflow nor exceed Max
		if got := b.Next(); got != 60*time.Second {
			t.Fatalf("wait after many failures = %v", got)
		}
	}
}

func TestBackoffFullJitterRange(t *testing.T) {
	var asked []int64
	b := Backoff{Min: time.Second, Max: time.Minute, Rand: func(n int64) int64 { asked = append(asked, n); return 0 }}
	for range 3 {
		if got := b.Next(); got != 0 {
			t.Fatalf("wait with the smallest draw = %v, want 0", got)
		}
	}
	// Rand is asked for [0, ceiling], both ends included.
	want := []int64{int64(time.Second) + 1, int64(2*time.Second) + 1, int64(4*time.Second) + 1}
	for i := range want {
		if asked[i] != want[i] {
			t.Fatalf("rand bound %d = %d, want %d", i, asked[i], want[i])
		}
	}

	// With the real generator, waits spread over the whole range.
	b = Backoff{Min: time.Second, Max: time.Second}
	var lo, hi int
	for range 2000 {
		d := b.Next()
		if d < 0 || d > time.Second {
			t.Fatalf("wait %v outside [0, 1s]", d)
		}
		if d < 100*time.Millisecond {
			lo++
		}
		if d > 900*time.Millisecond {
			hi++
		}
	}
	if lo == 0 || hi == 0 {
		t.Fatalf("waits not spread over [0, 1s]: %d low, %d high", lo, hi)
	}
}

func TestBackoffResetsAfterStableConnection(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute, StableAfter: 30 * time.Second}
	for range 5 {
		b.Next()
	}
	b.Ended(29 * time.Second)
	if c := b.Ceiling(); c != 32*time.Second {
		t.Fatalf("after a short connection, ceiling = %v, want 32s", c)
	}
	b.Ended(30 * time.Second)
	if c := b.Ceiling(); c != time.Second {
		t.Fatalf("after a stable connection, ceiling = %v, want 1s", c)
	}
}

func TestBackoffEdgeCases(t *testing.T) {
	b := Backoff{Min: 0, Max: time.Minute}
	if d := b.Next(); d != 0 {
		t.Fatalf("zero Min: wait %v", d)
	}
	b = Backoff{Min: time.Hour, Max: time.Minute}
	if c := b.Ceiling(); c != time.Minute {
		t.Fatalf("Min above Max: ceiling %v, want Max", c)
	}
	b = Backoff{Min: time.Second, Max: math.MaxInt64}
	for range 100 {
		if d := b.Next(); d < 0 {
			t.Fatalf("huge Max: negative wait %v", d)
		}
	}
}
