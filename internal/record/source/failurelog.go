package source

import (
	"context"
	"time"

	"github.com/practable/lablog/internal/platform/retrylog"
)

// RetryLogEvery is how often a run of failed dials is logged again: the
// first failure at once, then one line per period with how many failed
// meanwhile, so a stream that never connects is neither silent nor noisy.
const RetryLogEvery = retrylog.Every

// failed logs one failed dial (see package retrylog).
func (s *Source) failed(ctx context.Context, now time.Time, err error) {
	s.failures.Failed(ctx, s.log, now, "cannot connect; retrying with backoff", "still cannot connect", err)
}

// connectedAfterFailures ends a run of failures, saying how long it lasted.
func (s *Source) connectedAfterFailures(now time.Time) {
	s.failures.Ended(s.log, now, "connected after failing")
}
