package source

import (
	"context"
	"log/slog"
	"time"
)

// RetryLogEvery is how often a run of failed dials is logged again: the
// first failure at once, then one line per period with how many failed
// meanwhile, so a stream that never connects is neither silent nor noisy.
const RetryLogEvery = time.Minute

// failureLog counts a run of failed dials for logging; its zero value is a
// stream with no failures.
type failureLog struct {
	first, logged time.Time // of the run's first failure, of the last line
	total, since  int       // failures in the run, and since the last line
}

// failed logs one failed dial, at Warn if it is the first of a run or a
// period has passed since the last line, at Debug otherwise.
func (s *Source) failed(ctx context.Context, now time.Time, err error) {
	f := &s.failures
	f.total++
	f.since++
	switch {
	case f.total == 1:
		f.first, f.logged, f.since = now, now, 0
		s.log.Warn("cannot connect; retrying with backoff", "err", err)
	case now.Sub(f.logged) >= RetryLogEvery:
		s.log.Warn("still cannot connect", "failures", f.total, "since_last_line", f.since,
			"for", now.Sub(f.first).Round(time.Second).String(), "err", err)
		f.logged, f.since = now, 0
	default:
		s.log.Log(ctx, slog.LevelDebug, "cannot connect", "err", err)
	}
}

// connectedAfterFailures ends a run of failures, saying how long it lasted.
func (s *Source) connectedAfterFailures(now time.Time) {
	if f := s.failures; f.total > 0 {
		s.log.Info("connected after failing", "failures", f.total, "for", now.Sub(f.first).Round(time.Second).String())
	}
	s.failures = failureLog{}
}
