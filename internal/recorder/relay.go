package recorder

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/relay"
	"github.com/practable/lablog/internal/source"
)

// sourceConfig is the websocket client of stream s. A relay stream resolves
// a one-time URI before each dial; a relay_host stream with a token dials
// the host but watches its token.
func sourceConfig(cfg config.Config, s config.Stream) source.Config {
	sc := source.Config{
		Stream:       s.Name,
		URL:          s.URL,
		ReadLimit:    int64(cfg.Sources.ReadLimit),
		PingInterval: cfg.Sources.PingInterval,
		ReadTimeout:  cfg.Sources.ReadTimeout,
		MinBackoff:   cfg.Sources.MinBackoff,
		MaxBackoff:   cfg.Sources.MaxBackoff,
		TokenWarning: cfg.Sources.TokenWarning,
		// A stopped stream looks at its token as often as a failing one
		// would dial, and at least every 10 s.
		BlockedRetry: min(cfg.Sources.MaxBackoff, 10*time.Second),
	}
	switch {
	case s.Kind == config.KindRelay:
		sc.Prepare = relay.Direct(Credentials(s), nil, nil)
	case s.Kind == config.KindRelayHost && s.HasToken():
		sc.Prepare = relay.Watch(Credentials(s), nil)
	}
	return sc
}

// Credentials says where stream s's access URL and token come from.
func Credentials(s config.Stream) relay.Credentials {
	c := relay.Credentials{Stream: s.Name, Token: s.Token, Access: s.Access}
	if s.Kind == config.KindRelay {
		c.Access = relay.AccessURL(s.Relay, relay.LogTopic(s.Name))
	}
	if s.TokensDir != "" {
		c.TokenFile = relay.TokenFile(s.TokensDir, s.Name)
		c.AccessFile = relay.AccessFile(s.TokensDir, s.Name)
	}
	return c
}

// provisioners keeps the rules of every relay host that has streams with
// tokens: one provisioner per host.
func provisioners(cfg config.Config, log *slog.Logger) ([]*relay.Provisioner, error) {
	byHost := map[string]*relay.Provisioner{}
	var out []*relay.Provisioner
	for _, s := range cfg.Streams() {
		if s.Kind != config.KindRelayHost || !s.HasToken() {
			continue
		}
		p := byHost[s.RelayHost]
		if p == nil {
			api, err := relay.NewHostAPI(s.RelayHost, nil)
			if err != nil {
				return nil, fmt.Errorf("recorder: %w", err)
			}
			p = &relay.Provisioner{API: api, Interval: cfg.Sources.RulesInterval, Log: log}
			byHost[s.RelayHost] = p
			out = append(out, p)
		}
		p.Streams = append(p.Streams, Credentials(s))
	}
	return out, nil
}

// TokenExpiry tells when stream's relay token expires, as last read; false
// when the stream has no token or it could not be read. It fits
// status.Options.TokenExpiry.
func (r *Recorder) TokenExpiry(stream string) (time.Time, bool) {
	for _, s := range r.sources {
		if st := s.Stats(); st.Stream == stream {
			return st.TokenExpiry, !st.TokenExpiry.IsZero()
		}
	}
	return time.Time{}, false
}

// Provisioning reports how the rules of each relay host are kept.
func (r *Recorder) Provisioning() []relay.ProvisionStats {
	out := make([]relay.ProvisionStats, len(r.provisioners))
	for i, p := range r.provisioners {
		out[i] = p.Stats()
	}
	return out
}
