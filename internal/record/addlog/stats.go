package addlog

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/practable/lablog/internal/cloud/forward"
)

// Stats are the handler's counts since start, for the status page,
// /api/status and /metrics. They hold no user id and no credential.
type Stats struct {
	// Statements counts acknowledged statements by hardware (as the UI
	// named it, "none" when it did not) and verb ("other" for a verb that
	// is not known, "" for none).
	Statements    []VerbCount `json:"statements"`
	Total         int64       `json:"total"`
	LastStatement *time.Time  `json:"last_statement,omitempty"`
	Unauthorized  int64       `json:"unauthorized"` // 401
	TooLarge      int64       `json:"too_large"`    // 413
	RateLimited   int64       `json:"rate_limited"` // 429
	Refused       int64       `json:"refused"`      // 503
	// Forward is store and forward's state; nil when it is off.
	Forward *forward.Stats `json:"forward"`
}

// VerbCount is one row of Stats.Statements.
type VerbCount struct {
	Hardware string `json:"hardware"`
	Verb     string `json:"verb"`
	Count    int64  `json:"count"`
}

// maxHardwareKinds bounds the rows hostile query strings can add; later
// kinds are counted as "other".
const maxHardwareKinds = 32

type stats struct {
	unauthorized, tooLarge, limited, refused atomic.Int64

	mu     sync.Mutex
	counts map[[2]string]int64
	kinds  map[string]bool
	total  int64
	last   time.Time
}

func (s *stats) init() {
	s.counts = map[[2]string]int64{}
	s.kinds = map[string]bool{}
}

func (s *stats) recorded(hardware string, verb *string, at time.Time) {
	if hardware == "" {
		hardware = "none"
	}
	v := ""
	if verb != nil {
		v = *verb
		if _, known := verbs[v]; !known {
			v = "other"
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.kinds[hardware] {
		if len(s.kinds) >= maxHardwareKinds {
			hardware = "other"
		}
		s.kinds[hardware] = true
	}
	s.counts[[2]string{hardware, v}]++
	s.total++
	if at.After(s.last) {
		s.last = at
	}
}

// Stats returns a snapshot, rows sorted by hardware then verb.
func (h *Handler) Stats() Stats {
	s := &h.stats
	out := Stats{
		Unauthorized: s.unauthorized.Load(),
		TooLarge:     s.tooLarge.Load(),
		RateLimited:  s.limited.Load(),
		Refused:      s.refused.Load(),
	}
	s.mu.Lock()
	for k, n := range s.counts {
		out.Statements = append(out.Statements, VerbCount{Hardware: k[0], Verb: k[1], Count: n})
	}
	out.Total = s.total
	if !s.last.IsZero() {
		last := s.last
		out.LastStatement = &last
	}
	s.mu.Unlock()
	sort.Slice(out.Statements, func(i, j int) bool {
		a, b := out.Statements[i], out.Statements[j]
		return a.Hardware < b.Hardware || a.Hardware == b.Hardware && a.Verb < b.Verb
	})
	return out
}
