// Package source reads one stream's websocket and hands every frame, and every
// change of the connection, to a sink as frame.Records. It never waits on the
// sink: a full sink costs counted drops, later marked by an Overflow record.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/practable/lablog/internal/platform/defaults"
)

// Config describes the client of one stream. A zero field takes the default
// stated next to it (see WithDefaults).
type Config struct {
	Stream string // name stored with every record
	URL    string // ws:// or wss:// URL of the stream

	ReadLimit        int64         // largest frame accepted, in bytes; default 1 MiB
	PingInterval     time.Duration // how often we ping the peer; default 20s
	ReadTimeout      time.Duration // no frame or pong for this long ends the connection; default 60s
	HandshakeTimeout time.Duration // websocket handshake limit; default 10s
	MinBackoff       time.Duration // first reconnect wait ceiling; default 1s
	MaxBackoff       time.Duration // largest reconnect wait; default 60s
	StableAfter      time.Duration // a connection lasting this long resets the backoff; default 30s
	// After a connection that worked (1s or more) ends, reconnect waits
	// stay within [FastRetry/2, FastRetry] until they add up to
	// FastRetryFor (see Backoff): a restarted relay is rejoined within
	// seconds, one that stays down gets the doubling waits. Defaults 2s and
	// 60s; a negative FastRetryFor turns this off.
	FastRetry    time.Duration
	FastRetryFor time.Duration
	// Probe, when set, is shared by the streams of one endpoint: it cuts
	// their longer waits short when it sees the endpoint come back after
	// an outage longer than the fast window.
	Probe *Probe

	// Prepare, when set, runs before every dial and says what to dial: the
	// relay access protocol's one-time URI, or URL with the expiry of the
	// token behind it. A *Blocked error stops dialling until it succeeds
	// again; other errors count as failed dials. URL may then be empty.
	Prepare      func(ctx context.Context) (Target, error)
	BlockedRetry time.Duration // how often Prepare is asked again while Blocked; default 10s
	TokenWarning time.Duration // warn when the token expires within this; default 30 days

	// Now gives the wall clock and whether it is NTP synced; default SystemNow.
	Now func() (time.Time, bool)
	// Logger is where the source logs (every line with stream=); default
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultReadLimit        = 1 << 20
	DefaultPingInterval     = 20 * time.Second
	DefaultReadTimeout      = 60 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMinBackoff       = 1 * time.Second
	DefaultMaxBackoff       = 60 * time.Second
	DefaultStableAfter      = 30 * time.Second
	DefaultFastRetry        = 2 * time.Second
	DefaultFastRetryFor     = 60 * time.Second
	DefaultBlockedRetry     = 10 * time.Second
	DefaultTokenWarning     = 30 * 24 * time.Hour
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	defaults.Zero(&c.ReadLimit, DefaultReadLimit)
	defaults.Zero(&c.PingInterval, DefaultPingInterval)
	defaults.Zero(&c.ReadTimeout, DefaultReadTimeout)
	defaults.Zero(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	defaults.Zero(&c.MinBackoff, DefaultMinBackoff)
	defaults.Zero(&c.MaxBackoff, DefaultMaxBackoff)
	defaults.Zero(&c.StableAfter, DefaultStableAfter)
	defaults.Zero(&c.FastRetry, DefaultFastRetry)
	defaults.Zero(&c.FastRetryFor, DefaultFastRetryFor)
	defaults.Zero(&c.BlockedRetry, DefaultBlockedRetry)
	defaults.Zero(&c.TokenWarning, DefaultTokenWarning)
	if c.Now == nil {
		c.Now = SystemNow
	}
	return c
}

// validate reports settings that would make Run useless rather than merely slow.
func (c Config) validate() error {
	if c.Stream == "" {
		return errors.New("config: empty stream name")
	}
	if c.Prepare != nil && c.URL == "" {
		return c.checkTimes()
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("config: url: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("config: url %q: scheme must be ws or wss", redactURL(c.URL))
	}
	return c.checkTimes()
}

func (c Config) checkTimes() error {
	if c.ReadTimeout <= c.PingInterval {
		// The pong of our ping must be able to arrive before the deadline.
		return fmt.Errorf("config: read timeout %v must exceed ping interval %v", c.ReadTimeout, c.PingInterval)
	}
	if c.ReadLimit < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return errors.New("config: negative read limit or backoff")
	}
	return nil
}

// redactURL drops the query string, fragment and user info, which may hold
// single-use codes or credentials, so the URL can be stored and logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
