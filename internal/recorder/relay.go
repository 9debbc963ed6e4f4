package recorder

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/relay"
)

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
