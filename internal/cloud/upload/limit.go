package upload

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/practable/lablog/internal/platform/waitfor"
)

// limiter shares a byte rate among every upload: a token bucket holding at
// most one second's worth, so a cap is a cap even after a quiet spell.
type limiter struct {
	rate float64 // bytes per second; 0 is no limit

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newLimiter(bytesPerSecond int64) *limiter {
	return &limiter{rate: float64(bytesPerSecond)}
}

// wait blocks until n bytes may go, or ctx ends.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || l.rate <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.last.IsZero() {
		l.last = now
	}
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	debt := -l.tokens
	l.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	return waitfor.SleepErr(ctx, time.Duration(debt/l.rate*float64(time.Second)))
}

// limitedBody is a file's bytes sent through a limiter. It seeks: the SDK
// rewinds a body before sending it.
type limitedBody struct {
	ctx context.Context
	r   io.ReadSeeker
	lim *limiter
}

// chunk bounds one read, so a cap spreads evenly.
const chunk = 32 << 10

func (b *limitedBody) Read(p []byte) (int, error) {
	if len(p) > chunk {
		p = p[:chunk]
	}
	n, err := b.r.Read(p)
	if n > 0 {
		if werr := b.lim.wait(b.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (b *limitedBody) Seek(off int64, whence int) (int64, error) { return b.r.Seek(off, whence) }
