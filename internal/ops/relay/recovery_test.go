package relay

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/source"
)

// connSink notes when each stream (re)connects.
type connSink struct {
	mu    sync.Mutex
	cond  *sync.Cond
	ups   map[string][]time.Time
	downs map[string]int
}

func newConnSink() *connSink {
	s := &connSink{ups: map[string][]time.Time{}, downs: map[string]int{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *connSink) Enqueue(r frame.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Kind {
	case frame.Connected:
		s.ups[r.Stream] = append(s.ups[r.Stream], time.Now())
	case frame.Disconnected:
		s.downs[r.Stream]++
	}
	s.cond.Broadcast()
	return true
}

// await waits, up to limit, until cond holds for every stream.
func (s *connSink) await(t *testing.T, streams []string, limit time.Duration, what string, cond func(stream string) bool) {
	t.Helper()
	timer := time.AfterFunc(limit, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		missing := 0
		for _, st := range streams {
			if !cond(st) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d streams not %s within %v", missing, len(streams), what, limit)
		}
		s.cond.Wait()
	}
}

// measureRecovery runs n relay streams with the source settings of tmpl,
// lets them be connected for stable, stops the relay for outage, starts it
// again and returns how long after the start each stream was connected.
func measureRecovery(t *testing.T, tmpl source.Config, n int, stable, outage time.Duration) []time.Duration {
	r := newRelay(t)
	sink := newConnSink()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var streams []string
	for i := range n {
		name := fmt.Sprintf("spin%02d", 30+i)
		streams = append(streams, name)
		topic := LogTopic(name)
		cfg := tmpl
		cfg.Stream = name
		cfg.Prepare = Direct(Credentials{Stream: name, Access: r.AccessURL(topic),
			Token: mint(t, r.URL(), topic, 48*time.Hour, ScopeRead)}, nil, nil)
		cfg.Logger = quietLog()
		src := source.New(cfg, sink)
		wg.Add(1)
		go func() { defer wg.Done(); _ = src.Run(ctx) }()
	}
	sink.await(t, streams, wait, "connected", func(s string) bool { return len(sink.ups[s]) == 1 })
	time.Sleep(stable) // what is measured: the connections must count as stable
	r.Stop()
	sink.await(t, streams, wait, "disconnected", func(s string) bool { return sink.downs[s] == 1 })
	time.Sleep(outage) // the outage itself
	start := time.Now()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	sink.await(t, streams, 2*time.Minute, "back", func(s string) bool { return len(sink.ups[s]) >= 2 })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var back []time.Duration
	for _, s := range streams {
		back = append(back, sink.ups[s][1].Sub(start))
	}
	slices.Sort(back)
	return back
}

// quantile of sorted durations, nearest rank.
func quantile(d []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(d))+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

func summary(d []time.Duration) string {
	r := func(x time.Duration) string { return x.Round(10 * time.Millisecond).String() }
	return fmt.Sprintf("p50 %s p95 %s max %s", r(quantile(d, 0.5)), r(quantile(d, 0.95)), r(d[len(d)-1]))
}

// Streams that were stable come back within about FastRetry of the relay,
// whatever the backoff grew to during the outage. Scaled down: the outage
// lasts 10 Min backoffs, after which the plain backoff waits up to 12 s.
func TestStableStreamsRecoverQuicklyAfterOutage(t *testing.T) {
	cfg := source.Config{MinBackoff: 200 * time.Millisecond, MaxBackoff: 12 * time.Second,
		StableAfter: 100 * time.Millisecond, FastRetry: 100 * time.Millisecond, FastRetryFor: time.Minute}
	back := measureRecovery(t, cfg, 12, 200*time.Millisecond, 2*time.Second)
	t.Logf("back after %s", summary(back))
	if m := back[len(back)-1]; m > time.Second {
		t.Fatalf("slowest stream back after %v (%s), want within 1s", m, summary(back))
	}
}

// TestRecoveryFigures measures recovery with the default backoff settings,
// with and without the fast window, for an outage of
// LABLOG_RECOVERY_OUTAGE (e.g. 10s): a figure for docs/relay.md, not a check.
//
//	LABLOG_RECOVERY_OUTAGE=10s go test ./internal/ops/relay -run TestRecoveryFigures -v
func TestRecoveryFigures(t *testing.T) {
	outage, err := time.ParseDuration(os.Getenv("LABLOG_RECOVERY_OUTAGE"))
	if err != nil {
		t.Skip("set LABLOG_RECOVERY_OUTAGE (e.g. 10s) to measure")
	}
	for _, tc := range []struct {
		name    string
		fastFor time.Duration
	}{{"without fast window (before)", -1}, {"with fast window", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			// Defaults but StableAfter, so the run need not last 30 s first.
			cfg := source.Config{StableAfter: time.Second, FastRetryFor: tc.fastFor}
			back := measureRecovery(t, cfg, 12, 1500*time.Millisecond, outage)
			t.Logf("12 streams, outage %v: back after %s", outage, summary(back))
		})
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
