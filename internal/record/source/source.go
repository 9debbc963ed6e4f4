package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/retrylog"
	"github.com/practable/lablog/internal/platform/waitfor"
	"github.com/practable/lablog/internal/record/frame"
)

// Source is the websocket client of one stream.
type Source struct {
	cfg      Config
	sink     Sink
	log      *slog.Logger
	redacted string // the URL without secrets, for records and logs
	stats    stats

	// Owned by the Run goroutine.
	backoff     Backoff
	pending     int64        // records dropped since the last Overflow record
	lastWarn    time.Time    // of the last queue-full warning
	lastBlocked string       // the Blocked state last logged
	warned      string       // TokenID (or expiry) of the token last warned about
	failures    retrylog.Run // the current run of failed dials, for the log
}

// fastAfter is how long a connection must have worked for its end to open
// the fast reconnect window (see Backoff): long enough that a relay
// accepting and dropping at once is not retried fast.
const fastAfter = time.Second

// New makes the source of cfg.Stream feeding sink. It starts nothing; see Run.
func New(cfg Config, sink Sink) *Source {
	cfg = cfg.WithDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Source{
		cfg:      cfg,
		sink:     sink,
		log:      log.With(logkey.Stream, cfg.Stream),
		redacted: redactURL(cfg.URL),
		backoff: Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff, StableAfter: cfg.StableAfter,
			FastAfter: min(fastAfter, cfg.StableAfter), FastMax: cfg.FastRetry, FastFor: cfg.FastRetryFor},
	}
	s.stats.s.Stream = cfg.Stream
	return s
}

// Stats returns the current state; it is safe to call from any goroutine.
func (s *Source) Stats() Stats {
	now, _ := s.cfg.Now()
	return s.stats.snapshot(now, s.cfg.TokenWarning)
}

// Run connects, reads and reconnects until ctx is done, then returns nil. It
// returns an error only for a configuration it cannot work with. Call it once.
func (s *Source) Run(ctx context.Context) error {
	if err := s.cfg.validate(); err != nil {
		return fmt.Errorf("source %s: %w", s.cfg.Stream, err)
	}
	now, _ := s.cfg.Now()
	s.stats.started(now)
	var expiry time.Time // of the token last dialled with
	for ctx.Err() == nil {
		target, err := s.prepare(ctx)
		var blocked *Blocked
		if errors.As(err, &blocked) {
			// Retrying cannot help: look again later, without backoff
			// growth or failure noise, for a renewed token.
			if !waitfor.Sleep(ctx, s.cfg.BlockedRetry) {
				return nil
			}
			continue
		}
		var conn *websocket.Conn
		if err == nil {
			expiry = target.TokenExpiry
			conn, err = s.dial(ctx, target.URL)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			s.stats.failed(err.Error())
			now, _ := s.cfg.Now()
			s.failed(ctx, now, err)
		default:
			now, _ := s.cfg.Now()
			s.connectedAfterFailures(now)
			start := time.Now()
			expired := s.serve(ctx, conn, target)
			s.backoff.Ended(time.Since(start))
			if expired {
				continue // Prepare tells whether a renewed token is there
			}
		}
		if !s.pause(ctx, s.backoff.Next(), expiry) {
			return nil
		}
	}
	return nil
}

// pause waits d between dials unless ctx ends first; it reports whether to
// go on. A token expiring meanwhile stops the stream at once, so the
// state and the ERROR line come at the expiry, not at the next dial.
// A long wait is cut short when the stream's probe sees the endpoint come
// back.
func (s *Source) pause(ctx context.Context, d time.Duration, expiry time.Time) bool {
	wait := waitfor.Sleep
	if p := s.cfg.Probe; p != nil && d > 2*p.interval() {
		wait = p.Wait
	}
	if expiry.IsZero() {
		return wait(ctx, d)
	}
	now, _ := s.cfg.Now()
	left := expiry.Sub(now)
	if left <= 0 || left >= d {
		return wait(ctx, d)
	}
	if !waitfor.Sleep(ctx, left) {
		return false
	}
	s.expire(expiry)
	return true
}

// event records a change of the connection.
func (s *Source) event(kind frame.Kind, detail string) { s.emit(kind, []byte(detail)) }
