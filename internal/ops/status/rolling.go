package status

import "time"

// Rolling counts events in the last minute (in one-second buckets) and the
// last hour (in one-minute buckets), in fixed memory per stream. Buckets
// carry the time they stand for, so a stale bucket is ignored rather than
// having to be cleared on a timer. It is not safe for concurrent use; the
// Monitor guards it.
type Rolling struct {
	secs ring
	mins ring
}

type ring struct {
	width int64 // seconds per bucket
	slots [60]slot
}

type slot struct {
	at int64 // Unix time / width of the bucket's interval
	n  int64
}

// NewRolling returns an empty counter.
func NewRolling() *Rolling {
	return &Rolling{secs: ring{width: 1}, mins: ring{width: 60}}
}

// Add counts n events at t.
func (r *Rolling) Add(t time.Time, n int64) {
	if n == 0 {
		return
	}
	r.secs.add(t.Unix(), n)
	r.mins.add(t.Unix(), n)
}

// LastMinute is the number of events in the 60 seconds up to now.
func (r *Rolling) LastMinute(now time.Time) int64 { return r.secs.sum(now.Unix()) }

// LastHour is the number of events in the current minute and the 59 before
// it: between 59 and 60 minutes of history.
func (r *Rolling) LastHour(now time.Time) int64 { return r.mins.sum(now.Unix()) }

func (g *ring) add(unix, n int64) {
	at := unix / g.width
	s := &g.slots[at%int64(len(g.slots))]
	if s.at != at {
		*s = slot{at: at}
	}
	s.n += n
}

func (g *ring) sum(unix int64) int64 {
	cur := unix / g.width
	var total int64
	for _, s := range g.slots {
		if s.at <= cur && s.at > cur-int64(len(g.slots)) {
			total += s.n
		}
	}
	return total
}
