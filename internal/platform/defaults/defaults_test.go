package defaults

import (
	"log/slog"
	"testing"
	"time"
)

func TestDefaultsFillOnlyWhatIsUnset(t *testing.T) {
	type options struct {
		Interval time.Duration
		Count    int
		Name     string
		Now      func() time.Time
		Logger   *slog.Logger
	}
	var o options
	Positive(&o.Interval, time.Minute)
	Positive(&o.Count, 3)
	Zero(&o.Name, "x")
	Clock(&o.Now)
	Logger(&o.Logger)
	if o.Interval != time.Minute || o.Count != 3 || o.Name != "x" || o.Now == nil || o.Logger != slog.Default() {
		t.Fatalf("unset fields not filled: %+v", o)
	}

	fixed := func() time.Time { return time.Unix(7, 0) }
	own := slog.New(slog.DiscardHandler)
	o = options{Interval: time.Second, Count: 1, Name: "y", Now: fixed, Logger: own}
	Positive(&o.Interval, time.Minute)
	Positive(&o.Count, 3)
	Zero(&o.Name, "x")
	Clock(&o.Now)
	Logger(&o.Logger)
	if o.Interval != time.Second || o.Count != 1 || o.Name != "y" || !o.Now().Equal(time.Unix(7, 0)) || o.Logger != own {
		t.Fatalf("set fields changed: %+v", o)
	}

	o = options{Interval: -time.Second, Count: -1}
	Positive(&o.Interval, time.Minute)
	Positive(&o.Count, 3)
	if o.Interval != time.Minute || o.Count != 3 {
		t.Fatalf("negative fields are not defaulted by Positive: %+v", o)
	}
}
