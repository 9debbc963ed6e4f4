package recorder

import (
	"time"

	"github.com/practable/lablog/internal/ops/relay"
)

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
