package labsim

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"
)

// LabOptions shape the simulated traffic.
type LabOptions struct {
	Streams   []string         // e.g. spin30..spin41, pend00..; spin* are spinners, pend* pendulums
	Rate      float64          // average messages per second per stream; 0 or less: as fast as possible
	JoinProb  float64          // probability that a burst is glued into one frame, as the relay does under load
	BadFrames bool             // add occasional frames that are not one JSON message (see badKinds)
	Seed      uint64           // same seed and options, same messages
	Now       func() time.Time // clock of the "t" field; default time.Now
}

// Timing of the traffic, chosen to look like people clicking.
const (
	badProb     = 0.03 // per burst, with BadFrames
	minIntraGap = 5 * time.Millisecond
	maxIntraGap = 40 * time.Millisecond
	meanBurst   = 2.5 // messages in an unglued burst, 1 to 4
)

// Publisher takes the frames a Lab makes: a Host (frames from upstream), or
// the UIs of a relay double (package relaytest).
type Publisher interface {
	Publish(stream string, frame []byte, binary bool)
}

// Lab publishes the traffic of a lab's logging streams on a Host: UI logs,
// analytics events, legacy messages, dashboard requests, feedback, analytics
// server responses (Python style, with NaN) and achievement logs, in bursts.
// Each message carries a per-stream counter in its payload ("n": 1, 2, ...),
// so a recording can be checked for gaps and duplicates.
type Lab struct {
	host Publisher
	opts LabOptions
	gens map[string]*gen
}

// NewLab prepares traffic for opts.Streams on host.
func NewLab(host *Host, opts LabOptions) *Lab { return NewLabOn(host, opts) }

// NewLabOn prepares traffic for opts.Streams, published on p.
func NewLabOn(host Publisher, opts LabOptions) *Lab {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Lab{host: host, opts: opts, gens: map[string]*gen{}}
	for _, s := range opts.Streams {
		l.gens[s] = newGen(s, opts.Seed)
	}
	return l
}

// Run publishes until ctx is done, then returns nil.
func (l *Lab) Run(ctx context.Context) error {
	l.run(ctx, -1)
	return nil
}

// RunN publishes exactly n more messages on every stream (bad frames, which
// carry no counter, come on top) and returns; ctx.Err() if it ended first.
func (l *Lab) RunN(ctx context.Context, n int) error {
	l.run(ctx, int64(n))
	return ctx.Err()
}

// Sent is the number of messages published on stream.
func (l *Lab) Sent(stream string) int64 {
	if g := l.gens[stream]; g != nil {
		return g.sent.Load()
	}
	return 0
}

// Frames is the number of frames published on stream, bad ones included.
func (l *Lab) Frames(stream string) int64 {
	if g := l.gens[stream]; g != nil {
		return g.frames.Load()
	}
	return 0
}

func (l *Lab) run(ctx context.Context, n int64) {
	var wg sync.WaitGroup
	for _, g := range l.gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stream(ctx, g, n)
		}()
	}
	wg.Wait()
}

// stream publishes bursts on one stream; n < 0 means until ctx ends.
func (l *Lab) stream(ctx context.Context, g *gen, n int64) {
	p := pacer{rate: l.opts.Rate, rng: g.timing}
	defer p.stop()
	target := g.sent.Load() + n
	p.stagger(ctx)
	for n < 0 || g.sent.Load() < target {
		if ctx.Err() != nil {
			return
		}
		if l.opts.BadFrames && g.rng.Float64() < badProb {
			data, binary := g.badFrame(g.pickBad())
			l.publish(g, data, binary, 0)
		}
		glue := g.rng.Float64() < l.opts.JoinProb
		k := int64(1 + g.rng.IntN(4))
		if glue {
			k = int64(2 + g.rng.IntN(4))
		}
		if n >= 0 {
			k = min(k, target-g.sent.Load())
		}
		if glue {
			var data []byte
			for range k {
				data = append(data, g.message(l.opts.Now())...)
			}
			l.publish(g, data, false, k)
			p.burst(ctx, k, 0)
			continue
		}
		var intra time.Duration
		for i := range k {
			if i > 0 {
				intra += p.gap(ctx)
			}
			l.publish(g, g.message(l.opts.Now()), false, 1)
		}
		p.burst(ctx, k, intra)
	}
}

func (l *Lab) publish(g *gen, data []byte, binary bool, messages int64) {
	l.host.Publish(g.stream, data, binary)
	g.sent.Add(messages)
	g.frames.Add(1)
}

// pacer spaces bursts so a stream averages rate messages per second, with
// exponential pauses (people click in bursts, then think).
type pacer struct {
	rate  float64
	rng   *rand.Rand
	timer *time.Timer
}

// stagger waits up to two mean bursts first, so streams started together do
// not all burst at the same instant.
func (p *pacer) stagger(ctx context.Context) {
	if p.rate > 0 {
		p.sleep(ctx, time.Duration(p.rng.Float64()*2*meanBurst/p.rate*float64(time.Second)))
	}
}

// gap pauses between the frames of a burst and returns the pause.
func (p *pacer) gap(ctx context.Context) time.Duration {
	if p.rate <= 0 {
		return 0
	}
	d := minIntraGap + time.Duration(p.rng.Int64N(int64(maxIntraGap-minIntraGap)))
	p.sleep(ctx, d)
	return d
}

// burst pauses after a burst of k messages that already took spent.
func (p *pacer) burst(ctx context.Context, k int64, spent time.Duration) {
	if p.rate <= 0 {
		return
	}
	d := time.Duration(p.rng.ExpFloat64() * float64(k) / p.rate * float64(time.Second))
	p.sleep(ctx, d-spent)
}

func (p *pacer) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		p.timer.Stop()
	case <-p.timer.C:
	}
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// streamSeed gives every stream its own random sequence, so its messages do
// not depend on goroutine scheduling or on the other streams.
func streamSeed(stream string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(stream))
	return h.Sum64()
}
