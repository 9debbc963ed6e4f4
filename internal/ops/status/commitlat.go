package status

import (
	"math"
	"slices"
	"sync"
	"time"
)

// commitWindow is how many recent commits the exact latency figures cover:
// a few seconds of a busy writer, minutes of a quiet one.
const commitWindow = 4096

// CommitLatency is the time of recent buffer commits, in milliseconds.
type CommitLatency struct {
	Commits int     `json:"commits"` // how many recent commits the figures cover
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

// commitRing keeps the last commitWindow commit durations, so /api/status
// can give exact percentiles where the histogram only has buckets.
type commitRing struct {
	mu   sync.Mutex
	took []time.Duration
	next int
}

func (r *commitRing) add(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.took) < commitWindow {
		r.took = append(r.took, d)
		return
	}
	r.took[r.next] = d
	r.next = (r.next + 1) % commitWindow
}

// summary is nil before the first commit.
func (r *commitRing) summary() *CommitLatency {
	r.mu.Lock()
	sorted := slices.Clone(r.took)
	r.mu.Unlock()
	if len(sorted) == 0 {
		return nil
	}
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// Nearest rank: the smallest value with at least q of the commits at or below it.
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(sorted)))) - 1
		return sorted[max(0, min(i, len(sorted)-1))]
	}
	return &CommitLatency{Commits: len(sorted), P50: ms(rank(0.50)), P99: ms(rank(0.99)), Max: ms(sorted[len(sorted)-1])}
}
