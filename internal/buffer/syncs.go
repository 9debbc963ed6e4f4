package buffer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// SlowSyncEnv names the environment variable that slows every fsync of the
// buffer down, to show on a fast disk how lablog behaves on an SD card:
// "10ms" adds 10 ms to each fsync; "10ms+70ms@2" also adds a 70 ms spike to
// 2% of them. It is a test and benchmark hook, read once at Open.
const SlowSyncEnv = "LABLOG_SLOW_FSYNC"

// SlowSync delays fsyncs: Base each, plus Spike on Percent% of them.
type SlowSync struct {
	Base    time.Duration
	Spike   time.Duration
	Percent float64
}

// ParseSlowSync reads a SlowSyncEnv value.
func ParseSlowSync(s string) (SlowSync, error) {
	var out SlowSync
	base, spike, hasSpike := strings.Cut(s, "+")
	var err error
	if out.Base, err = time.ParseDuration(base); err != nil || out.Base < 0 {
		return SlowSync{}, fmt.Errorf("%s=%q: want a delay like 10ms or 10ms+70ms@2", SlowSyncEnv, s)
	}
	if hasSpike {
		d, pct, ok := strings.Cut(spike, "@")
		if out.Spike, err = time.ParseDuration(d); !ok || err != nil || out.Spike < 0 {
			return SlowSync{}, fmt.Errorf("%s=%q: want a spike like +70ms@2 (2%% of fsyncs)", SlowSyncEnv, s)
		}
		if out.Percent, err = strconv.ParseFloat(pct, 64); err != nil || out.Percent < 0 || out.Percent > 100 {
			return SlowSync{}, fmt.Errorf("%s=%q: spike percentage must be 0-100", SlowSyncEnv, s)
		}
	}
	return out, nil
}

func slowSyncFromEnv() (*SlowSync, error) {
	v := os.Getenv(SlowSyncEnv)
	if v == "" {
		return nil, nil
	}
	s, err := ParseSlowSync(v)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *SlowSync) wait() {
	if s == nil {
		return
	}
	d := s.Base
	if s.Percent > 0 && rand.Float64()*100 < s.Percent {
		d += s.Spike
	}
	time.Sleep(d)
}

// syncCounter counts the buffer's fsyncs. bbolt gives no hook around its
// own fdatasync calls, so they are counted the way bbolt makes them: two per
// write transaction (the data pages, then the meta page) and one more when
// the file grew (bbolt syncs the new size). A test checks the count against
// the fsync system calls that strace sees.
type syncCounter struct{ n atomic.Int64 }

func (c *syncCounter) committed(grew bool) {
	n := int64(2)
	if grew {
		n++
	}
	c.n.Add(n)
}
