package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/practable/lablog/internal/platform/waitfor"
)

// scale is what one run measured at one number of streams.
type scale struct {
	idleMem        memory  // at the end of the idle window
	idleCPU        float64 // % of a core
	loadMem        memory  // peaks at 1 msg/s per stream
	loadCPU        float64 // % of a core
	sent, dropped  float64
	idleS, activeS float64
}

// measureScale connects n silent streams, watches the child idle for idle,
// then offers 1 msg/s per stream for active (when not 0).
func (r *runner) measureScale(ctx context.Context, n int, idle, active time.Duration, seed uint64) (scale, error) {
	var out scale
	dir, s, done, err := r.stage("scale")
	if err != nil {
		return out, err
	}
	defer done()
	names := streamNames(n)
	c, err := startChild(ctx, r.o, dir, s, names)
	if err != nil {
		return out, err
	}
	defer c.stop()
	if err := c.ready(ctx, s, names, float64(n), r.connectTimeout(n)); err != nil {
		return out, err
	}
	cpu := func() float64 { v, _ := cpuSeconds(c.pid()); return v }

	c0, t0 := cpu(), time.Now()
	if err := waitfor.SleepErr(ctx, idle); err != nil { // the measurement itself: nothing to await
		return out, err
	}
	out.idleS = time.Since(t0).Seconds()
	out.idleCPU = 100 * (cpu() - c0) / out.idleS
	c.mem.sample(c.pid())
	out.idleMem = c.mem.current()
	if active == 0 {
		return out, nil
	}

	before, err := scrape(ctx, c.base)
	if err != nil {
		return out, err
	}
	c.mem.reset()
	c1, t1 := cpu(), time.Now()
	runPaced(ctx, s, names, 1, active, seed)
	sent := s.sent()
	wait, cancel := context.WithTimeout(ctx, r.drainTimeout())
	err = c.await(wait, func(k counters) bool {
		return (k.Committed-before.Committed)+(k.Dropped-before.Dropped) >= float64(sent.frames)
	})
	cancel()
	if err != nil {
		return out, fmt.Errorf("%d streams at 1 msg/s: %w", n, err)
	}
	out.activeS = time.Since(t1).Seconds()
	out.loadCPU = 100 * (cpu() - c1) / out.activeS
	out.loadMem = c.mem.peaks()
	after, err := scrape(ctx, c.base)
	if err != nil {
		return out, err
	}
	out.sent, out.dropped = float64(sent.msgs), after.Dropped-before.Dropped
	return out, nil
}

func (r *runner) addScale(n int, g scale) {
	sc := fmt.Sprintf("scaling %d streams", n)
	mib := float64(1 << 20)
	r.rep.add(sc, "idle RSS", "MiB", "", g.idleMem.RSS/mib)
	r.rep.add(sc, "idle RSS anon", "MiB", "", g.idleMem.Anon/mib)
	r.rep.add(sc, "idle CPU", "% core", "", g.idleCPU)
	r.rep.add(sc, "1 msg/s peak RSS", "MiB", "", g.loadMem.RSS/mib)
	r.rep.add(sc, "1 msg/s peak RSS anon", "MiB", "", g.loadMem.Anon/mib)
	r.rep.add(sc, "1 msg/s CPU", "% core", "", g.loadCPU)
	r.rep.add(sc, "1 msg/s RSS per stream", "KiB", "", g.loadMem.RSS/1024/float64(n))
	r.rep.add(sc, "1 msg/s CPU per stream", "% core", "", g.loadCPU/float64(n))
	r.rep.add(sc, "1 msg/s dropped", "frames", "", g.dropped)
}

// scalingNotes compares the cost of each added stream between sizes: a
// cost per added stream that keeps rising means growth faster than linear.
func (r *runner) scalingNotes(sizes []int) {
	type cost struct{ anon, cpu float64 }
	var prev *cost
	prevN := 0
	for _, n := range sizes {
		sc := fmt.Sprintf("scaling %d streams", n)
		a, c := r.rep.Find(sc, "1 msg/s peak RSS anon"), r.rep.Find(sc, "1 msg/s CPU")
		if a == nil || c == nil {
			continue
		}
		cur := &cost{a.Summary().Median * 1024, c.Summary().Median} // KiB, % core
		if prev != nil {
			dn := float64(n - prevN)
			anon, cpu := (cur.anon-prev.anon)/dn, (cur.cpu-prev.cpu)/dn
			step := marginalScenario(prevN, n)
			r.rep.add(step, "anon RSS per added stream", "KiB", "", anon).Derived = true
			r.rep.add(step, "CPU per added stream", "% core", "", cpu).Derived = true
		}
		prev, prevN = cur, n
	}
	// Flag a last step that costs much more per stream than the one before.
	if len(sizes) >= 3 {
		k := len(sizes)
		last := r.rep.Find(marginalScenario(sizes[k-2], sizes[k-1]), "anon RSS per added stream")
		before := r.rep.Find(marginalScenario(sizes[k-3], sizes[k-2]), "anon RSS per added stream")
		if last != nil && before != nil {
			l, b := last.Summary().Median, before.Summary().Median
			verdict := "linear or better"
			if l > 1.5*b && l-b > 4 {
				verdict = "FASTER THAN LINEAR"
			}
			r.rep.note("scaling: anon RSS per added stream %s KiB (%d to %d streams) vs %s KiB (%d to %d): %s.",
				formatNum(l), sizes[k-2], sizes[k-1], formatNum(b), sizes[k-3], sizes[k-2], verdict)
		}
	}
}

// marginalScenario names the step from a to b streams.
func marginalScenario(a, b int) string { return fmt.Sprintf("scaling %d to %d streams", a, b) }
