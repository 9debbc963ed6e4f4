package source

import (
	"context"
	"errors"
	"time"
)

// Target is what Config.Prepare decides before a dial.
type Target struct {
	// URL is the ws or wss URL to dial now; empty means Config.URL. It may
	// carry a single-use code: only its redacted form is recorded.
	URL string
	// TokenExpiry is when the credentials behind URL expire (zero: none).
	// The source ends the connection then, and warns ahead of it.
	TokenExpiry time.Time
	// TokenID tells tokens apart (a fingerprint, never the token), so a
	// token is warned about once however often the stream reconnects;
	// empty means TokenExpiry identifies it.
	TokenID string
}

// Blocked is the error Config.Prepare returns when dialling cannot succeed
// until someone acts: a token expired, or made for another topic. The
// source stops dialling, shows State, and asks Prepare again every
// Config.BlockedRetry, so a renewed token file is used without a restart.
type Blocked struct {
	State       string    // shown as Stats.State, e.g. TokenExpiredState(exp)
	TokenState  string    // TokenExpired, TokenWrongTopic or TokenInvalid
	TokenExpiry time.Time // when known
	Err         error     // the cause, when there is one
}

func (b *Blocked) Error() string { return b.State }

// Unwrap returns the cause.
func (b *Blocked) Unwrap() error { return b.Err }

// Token states (Stats.TokenState).
const (
	TokenNone       = ""            // the stream uses no relay token
	TokenOK         = "ok"          // valid for longer than Config.TokenWarning
	TokenExpiring   = "expiring"    // expires within Config.TokenWarning
	TokenExpired    = "expired"     // expired: the stream is stopped
	TokenWrongTopic = "wrong_topic" // made for another topic: the stream is stopped
	TokenInvalid    = "invalid"     // missing, unreadable or unusable: the stream is stopped
)

// Connection states (Stats.State). A stopped stream shows Blocked.State
// instead.
const (
	StateConnecting   = "connecting"   // no connection yet
	StateConnected    = "connected"    // reading frames
	StateReconnecting = "reconnecting" // lost or refused; retrying with backoff
)

// ExpiryTime formats a token's expiry with its time, so "expired" can be
// told from "expired a minute ago": 2026-11-26 14:03:05 UTC.
func ExpiryTime(t time.Time) string { return t.UTC().Format(time.DateTime) + " UTC" }

// TokenExpiredState is the Blocked.State of a stream whose token expired.
func TokenExpiredState(exp time.Time) string { return "token expired at " + ExpiryTime(exp) }

// prepare asks Config.Prepare, if any, for the dial target and keeps the
// token's state in Stats. A *Blocked error comes back as is.
func (s *Source) prepare(ctx context.Context) (Target, error) {
	if s.cfg.Prepare == nil {
		return Target{URL: s.cfg.URL}, nil
	}
	t, err := s.cfg.Prepare(ctx)
	var b *Blocked
	if errors.As(err, &b) {
		s.stop(b)
		return Target{}, b
	}
	if err != nil {
		return Target{}, err
	}
	if now, _ := s.cfg.Now(); !t.TokenExpiry.IsZero() && !now.Before(t.TokenExpiry) {
		// Whatever Prepare says, dialling with an expired token is futile.
		b := &Blocked{State: TokenExpiredState(t.TokenExpiry), TokenState: TokenExpired, TokenExpiry: t.TokenExpiry}
		s.stop(b)
		return Target{}, b
	}
	if s.lastBlocked != "" {
		s.log.Info("token usable again: resuming", "was", s.lastBlocked)
		s.lastBlocked = ""
	}
	if t.URL == "" {
		t.URL = s.cfg.URL
	}
	s.stats.token(t.TokenExpiry)
	s.warnExpiry(t)
	return t, nil
}

// stop shows that the stream is stopped, logging it once per state.
func (s *Source) stop(b *Blocked) {
	now, _ := s.cfg.Now()
	s.stats.blocked(now, b)
	if b.State != s.lastBlocked {
		s.lastBlocked = b.State
		var attrs []any
		if !b.TokenExpiry.IsZero() { // unknown for a token that cannot be read
			attrs = append(attrs, "token_expiry", ExpiryTime(b.TokenExpiry))
		}
		s.log.Error("stream stopped: "+b.State, attrs...)
	}
}

// expire stops the stream at its token's expiry, so the ERROR line comes
// then and not at the next dial, which may be a backoff later.
func (s *Source) expire(exp time.Time) {
	s.stop(&Blocked{State: TokenExpiredState(exp), TokenState: TokenExpired, TokenExpiry: exp})
}

// warnExpiry logs, once per token, that it expires within TokenWarning.
func (s *Source) warnExpiry(t Target) {
	exp := t.TokenExpiry
	if exp.IsZero() {
		return
	}
	id := t.TokenID
	if id == "" {
		id = exp.UTC().Format(time.RFC3339Nano)
	}
	if id == s.warned {
		return
	}
	now, _ := s.cfg.Now()
	if left := exp.Sub(now); left < s.cfg.TokenWarning {
		s.warned = id
		s.log.Warn("relay token expires soon: renew it", "expires", ExpiryTime(exp),
			"days_left", int(left.Hours()/24), "left", left.Round(time.Second).String())
	}
}
