package status

import (
	"testing"
	"time"
)

func TestRolling(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	r := NewRolling()
	if r.LastMinute(t0) != 0 || r.LastHour(t0) != 0 {
		t.Fatal("new counter not empty")
	}
	r.Add(at(0), 5)
	r.Add(at(500*time.Millisecond), 1) // same second
	r.Add(at(30*time.Second), 10)
	r.Add(at(59*time.Second), 100)

	for _, tc := range []struct {
		now       time.Duration
		min, hour int64
		why       string
	}{
		{59 * time.Second, 116, 116, "all within the minute"},
		{60 * time.Second, 110, 116, "second 0 left the minute window"},
		{89 * time.Second, 110, 116, "second 30 still in"},
		{90 * time.Second, 100, 116, "second 30 left"},
		{118 * time.Second, 100, 116, "second 59 still in"},
		{119 * time.Second, 0, 116, "minute empty, hour keeps all"},
		{59 * time.Minute, 0, 116, "minute 0 is the oldest bucket of the hour"},
		{60 * time.Minute, 0, 0, "minute 0 left the hour"},
		{-time.Second, 0, 0, "events after now are not counted"},
	} {
		if got := r.LastMinute(at(tc.now)); got != tc.min {
			t.Errorf("%s: LastMinute at +%v = %d, want %d", tc.why, tc.now, got, tc.min)
		}
		if got := r.LastHour(at(tc.now)); got != tc.hour {
			t.Errorf("%s: LastHour at +%v = %d, want %d", tc.why, tc.now, got, tc.hour)
		}
	}

	// A bucket reused a full turn later starts from zero.
	r.Add(at(2*time.Hour), 7)
	if got := r.LastMinute(at(2 * time.Hour)); got != 7 {
		t.Errorf("reused second bucket = %d, want 7", got)
	}
	if got := r.LastHour(at(2 * time.Hour)); got != 7 {
		t.Errorf("reused minute bucket = %d, want 7", got)
	}
}

// A steady rate over a long run keeps the windows at the rate, however many
// times the rings wrap.
func TestRollingSteadyRate(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	r := NewRolling()
	for s := range 3 * 3600 {
		r.Add(t0.Add(time.Duration(s)*time.Second), 2)
	}
	now := t0.Add(3*time.Hour - time.Second)
	if got := r.LastMinute(now); got != 120 {
		t.Errorf("LastMinute = %d, want 120", got)
	}
	if got := r.LastHour(now); got != 7200 {
		t.Errorf("LastHour = %d, want 7200", got)
	}
}
