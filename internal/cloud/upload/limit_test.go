package upload

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The limiter makes a sender in debt wait its debt out, and an ended
// context cuts the wait short with its error.
func TestLimiterWaitsOutTheDebt(t *testing.T) {
	l := newLimiter(100_000) // 100 kB/s: 5 kB is 50 ms of debt
	start := time.Now()
	if err := l.wait(context.Background(), 5_000); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("5 kB at 100 kB/s went after %v, want about 50ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	if err := l.wait(ctx, 1_000_000); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with an ended context: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("an ended context did not cut a 10 s wait short (%v)", d)
	}
	if err := (*limiter)(nil).wait(ctx, 1); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}
