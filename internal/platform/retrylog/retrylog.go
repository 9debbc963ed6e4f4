// Package retrylog logs a run of repeated failures at a bounded rate: the
// first failure at once, then one line per Every with how many failed
// meanwhile, and one line when the run ends. A loop that retries for hours
// writes a line a minute, not one per attempt, so a journal on an SD card
// is not filled with the same error.
package retrylog

import (
	"context"
	"log/slog"
	"time"

	"github.com/practable/lablog/internal/platform/logkey"
)

// Every is how often a run of failures is logged again.
const Every = time.Minute

// Run counts one run of failures; its zero value is no failure yet, logged
// at Warn. It is not safe for concurrent use.
type Run struct {
	Level slog.Level // of the first and the periodic lines; zero (Info) means Warn

	first, logged time.Time // of the run's first failure, of the last line
	total, since  int       // failures in the run, and since the last line
}

// Failed notes a failure at now and logs it at Level, as first if it
// starts the run, as still if Every has passed since the last line,
// otherwise at Debug.
func (r *Run) Failed(ctx context.Context, log *slog.Logger, now time.Time, first, still string, err error) {
	level := r.Level
	if level == slog.LevelInfo {
		level = slog.LevelWarn
	}
	r.total++
	r.since++
	switch {
	case r.total == 1:
		r.first, r.logged, r.since = now, now, 0
		log.Log(ctx, level, first, logkey.Err, err)
	case now.Sub(r.logged) >= Every:
		log.Log(ctx, level, still, "failures", r.total, "since_last_line", r.since,
			"for", now.Sub(r.first).Round(time.Second).String(), logkey.Err, err)
		r.logged, r.since = now, 0
	default:
		log.Log(ctx, slog.LevelDebug, first, logkey.Err, err)
	}
}

// Failures is how many failed in the current run.
func (r *Run) Failures() int { return r.total }

// Ended ends the run; if it had failures, msg is logged at Info with how
// many and for how long.
func (r *Run) Ended(log *slog.Logger, now time.Time, msg string) {
	if r.total > 0 {
		log.Info(msg, "failures", r.total, "for", now.Sub(r.first).Round(time.Second).String())
	}
	*r = Run{Level: r.Level}
}
