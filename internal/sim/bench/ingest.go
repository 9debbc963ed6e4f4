package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// load is one ingest scenario: streams at rate messages/s each (0: the pool
// replayed flat out, or at total messages/s over all streams when total is
// set), for the child started with env.
type load struct {
	streams int
	rate    float64
	total   float64
	env     []string
}

// ingest is what one run of a load measured.
type ingest struct {
	sent                    sent
	committedMsgs, dropMsgs float64
	elapsed                 float64 // seconds from the load's start until all was committed or dropped
	p50, p99, max           float64 // commit latency, ms
	approx                  bool    // latencies from histogram buckets
	commits, fsyncs         float64
	queuePeak               float64
	mem                     memory
	cpu                     float64 // CPU seconds of the child over elapsed
}

func (g ingest) perSecond(v float64) float64 { return v / g.elapsed }

// measureIngest starts a child on a fresh buffer, waits until it is
// connected and quiet, offers the load for the run's duration, waits until
// every frame sent is committed or counted as dropped, and reads the figures.
func (r *runner) measureIngest(ctx context.Context, l load, d time.Duration, seed uint64) (ingest, error) {
	var g ingest
	dir, s, done, err := r.stage("ingest")
	if err != nil {
		return g, err
	}
	defer done()
	names := streamNames(l.streams)
	c, err := startChild(ctx, r.o, dir, s, names, l.env...)
	if err != nil {
		return g, err
	}
	defer c.stop()
	if err := c.ready(ctx, s, names, float64(len(names)), r.connectTimeout(len(names))); err != nil {
		return g, err
	}
	before, err := scrape(ctx, c.base)
	if err != nil {
		return g, err
	}
	cpu0, err := cpuSeconds(c.pid())
	if err != nil {
		return g, err
	}
	var p pool
	if l.rate <= 0 {
		if p, err = r.pool(ctx, l.streams); err != nil { // made before the clock starts
			return g, err
		}
	}
	c.mem.reset()
	q := watchQueue(ctx, c.base)
	start := time.Now()
	if l.rate > 0 {
		runPaced(ctx, s, names, l.rate, d, seed)
	} else {
		runFlat(ctx, s, p, d, l.total)
	}
	g.sent = s.sent()
	// Every frame sent ends committed or dropped; wait for that, bounded.
	wait, cancel := context.WithTimeout(ctx, r.drainTimeout())
	err = c.await(wait, func(k counters) bool {
		return (k.Committed-before.Committed)+(k.Dropped-before.Dropped) >= float64(g.sent.frames)
	})
	cancel()
	g.elapsed = time.Since(start).Seconds()
	q.stop()
	if err != nil {
		return g, fmt.Errorf("%d streams at %v msg/s: %w", l.streams, l.rate, err)
	}
	after, err := scrape(ctx, c.base)
	if err != nil {
		return g, err
	}
	cpu1, err := cpuSeconds(c.pid())
	if err != nil {
		return g, err
	}
	g.cpu = cpu1 - cpu0
	g.mem = c.mem.peaks()
	g.queuePeak = q.peak()

	// Records are frames; a glued frame holds several messages.
	frames, msgs := float64(g.sent.frames), float64(g.sent.msgs)
	dropped := after.Dropped - before.Dropped
	committed := min(after.Committed-before.Committed, frames-dropped) // less the overflow markers
	if frames > 0 {
		g.committedMsgs = committed * msgs / frames
		g.dropMsgs = dropped * msgs / frames
	}
	g.commits = after.Commits - before.Commits
	g.fsyncs = after.Fsyncs - before.Fsyncs

	st, err := readStatus(ctx, c.base)
	if err == nil && st.Buffer.CommitMs != nil {
		g.p50, g.p99, g.max = st.Buffer.CommitMs.P50, st.Buffer.CommitMs.P99, st.Buffer.CommitMs.Max
	} else {
		// An older binary: estimate from the histogram's buckets.
		b := deltaBuckets(after.CommitBuckets, before.CommitBuckets)
		g.p50, g.p99, g.max = 1000*HistogramQuantile(b, 0.5), 1000*HistogramQuantile(b, 0.99), 1000*HistogramMax(b)
		g.approx = true
	}
	return g, nil
}

// queueWatch samples the child's writer queue every 250 ms for its peak.
type queueWatch struct {
	mu     sync.Mutex
	max    float64
	cancel context.CancelFunc
	done   chan struct{}
}

func watchQueue(ctx context.Context, base string) *queueWatch {
	ctx, cancel := context.WithCancel(ctx)
	q := &queueWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(q.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := readStatus(ctx, base); err == nil {
				q.mu.Lock()
				q.max = max(q.max, st.Buffer.QueueDepth)
				q.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return q
}

func (q *queueWatch) stop() {
	q.cancel()
	<-q.done
}

func (q *queueWatch) peak() float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.max
}

// addIngest puts one run's figures in the table under scenario.
func (r *runner) addIngest(scenario string, g ingest, targets map[string]string) {
	add := func(fig, unit string, v float64) *Row { return r.rep.add(scenario, fig, unit, targets[fig], v) }
	add("sent", "msg/s", g.perSecond(float64(g.sent.msgs)))
	add("committed", "msg/s", g.perSecond(g.committedMsgs))
	add("dropped", "msg/s", g.perSecond(g.dropMsgs))
	add("commit p50", "ms", g.p50).Approx = g.approx
	add("commit p99", "ms", g.p99).Approx = g.approx
	add("commit max", "ms", g.max).Approx = g.approx
	add("commits", "/s", g.perSecond(g.commits))
	add("fsyncs per message", "", ratio(g.fsyncs, g.committedMsgs))
	add("queue depth peak", "frames", g.queuePeak)
	add("peak RSS anon", "MiB", g.mem.Anon/(1<<20))
	add("peak RSS file", "MiB", g.mem.File/(1<<20))
	add("peak RSS (VmHWM)", "MiB", g.mem.HWM/(1<<20))
	add("CPU per 100k messages", "s", ratio(g.cpu*1e5, g.committedMsgs))
}

// ratio is a/b, NaN when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
