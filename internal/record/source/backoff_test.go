package source

import (
	"math"
	"slices"
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

// After a working connection the waits stay in [FastMax/2, FastMax] until
// they add up to FastFor, then double again, from Min if the connection
// was stable; one that dropped at once opens no window.
func TestBackoffFastWindowAfterWorkingConnection(t *testing.T) {
	lo := func(int64) int64 { return 0 }
	hi := func(n int64) int64 { return n - 1 }
	for _, tc := range []struct {
		name   string
		lasted time.Duration
		rnd    func(int64) int64
		want   []time.Duration
	}{
		{"stable, shortest waits", 30 * time.Second, lo,
			[]time.Duration{time.Second, time.Second, time.Second, 0, 0, 0}},
		{"stable, longest waits", 30 * time.Second, hi,
			[]time.Duration{2 * time.Second, 2 * time.Second, time.Second, 2 * time.Second, 4 * time.Second}},
		{"working, not stable", 29 * time.Second, hi,
			[]time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 4 * time.Second}},
		{"dropped at once", 999 * time.Millisecond, hi,
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: time.Second, Max: time.Minute, StableAfter: 30 * time.Second,
				FastAfter: time.Second, FastMax: 2 * time.Second, FastFor: 3 * time.Second, Rand: tc.rnd}
			b.Next() // a failure before the connection
			b.Ended(tc.lasted)
			var got []time.Duration
			for range tc.want {
				got = append(got, b.Next())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
		})
	}
}

// FastMax above Max is capped at Max; a negative FastFor turns it off.
func TestBackoffFastWindowLimits(t *testing.T) {
	hi := func(n int64) int64 { return n - 1 }
	b := Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond, FastMax: 2 * time.Second, FastFor: time.Minute, Rand: hi}
	b.Ended(0)
	if d := b.Next(); d != 10*time.Millisecond {
		t.Fatalf("wait %v, want Max", d)
	}
	b = Backoff{Min: time.Second, Max: time.Minute, FastMax: 2 * time.Second, FastFor: -1, Rand: hi}
	b.Ended(0)
	if d := b.Next(); d != time.Second {
		t.Fatalf("wait %v, want Min (no window)", d)
	}
}
