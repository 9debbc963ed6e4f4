package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/sim/labsim"
)

// joinProb is how often a burst arrives glued into one frame, as the relay
// sends them under load (docs/relay.md, "Glued frames").
const joinProb = 0.15

// streamNames are spinner rigs: labsim shapes their messages by prefix.
func streamNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("spin%03d", i)
	}
	return names
}

// runPaced publishes labsim's realistic traffic (bursts, glued frames, NaN,
// achievement logs) at rate messages/s per stream until d has passed.
func runPaced(ctx context.Context, s *server, names []string, rate float64, d time.Duration, seed uint64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lab := labsim.NewLabOn(s, labsim.LabOptions{Streams: names, Rate: rate, JoinProb: joinProb, Seed: seed})
	_ = lab.Run(ctx)
}

// chunk is a run of encoded frames written in one system call.
type chunk struct {
	wire         []byte
	frames, msgs int64
	payload      int64
}

// chunkBytes is the size of one flat-out write.
const chunkBytes = 64 << 10

// pool is labsim traffic made once and replayed flat out, so that making
// messages does not compete with lablog for the two cores.
type pool map[string][]chunk

// capture collects what a labsim Lab publishes.
type capture struct {
	mu     sync.Mutex
	frames map[string][][]byte
}

func (c *capture) Publish(stream string, data []byte, binary bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames[stream] = append(c.frames[stream], data)
}

// makePool generates msgs messages per stream, in chunks.
func makePool(ctx context.Context, names []string, msgs int, seed uint64) (pool, error) {
	c := &capture{frames: map[string][][]byte{}}
	lab := labsim.NewLabOn(c, labsim.LabOptions{Streams: names, JoinProb: joinProb, Seed: seed})
	if err := lab.RunN(ctx, msgs); err != nil {
		return nil, fmt.Errorf("making the flat-out messages: %w", err)
	}
	p := pool{}
	for _, name := range names {
		var cur chunk
		for _, f := range c.frames[name] {
			cur.wire = appendFrame(cur.wire, opText, f)
			cur.frames++
			cur.msgs += int64(max(1, len(frame.Split(f))))
			cur.payload += int64(len(f))
			if len(cur.wire) >= chunkBytes {
				p[name] = append(p[name], cur)
				cur = chunk{}
			}
		}
		if cur.frames > 0 {
			p[name] = append(p[name], cur)
		}
	}
	return p, nil
}

// runFlat replays the pool on every stream as fast as the reader takes it,
// or at total messages/s shared by the streams when total > 0, until d has
// passed.
func runFlat(ctx context.Context, s *server, p pool, d time.Duration, total float64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for name, chunks := range p {
		if len(chunks) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start, sent := time.Now(), int64(0)
			perStream := total / float64(len(p))
			for i := 0; ctx.Err() == nil; i = (i + 1) % len(chunks) {
				c := chunks[i]
				s.sendRaw(name, c.wire, c.frames, c.msgs, c.payload)
				if sent += c.msgs; perStream > 0 {
					// Pacing, not synchronisation: hold the offered rate.
					due := start.Add(time.Duration(float64(sent) / perStream * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						select {
						case <-ctx.Done():
						case <-time.After(wait):
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}
