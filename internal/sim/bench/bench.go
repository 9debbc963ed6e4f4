// Package bench measures lablog as it runs: the real binary records the
// bench's own loopback websocket streams (realistic messages from package
// labsim), and the bench reads the child's counters from its status server
// and its memory and CPU from /proc. Every figure is the median of repeated
// runs, with the minimum and maximum, in one table; beside lablog runs a
// baseline, the old setup made durable (a JSON line per message, fsync per
// line), on the same load.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/record/buffer"
)

// Scenarios, in the order they run; Options.Only picks some.
var Scenarios = []string{"ingest", "baseline", "http", "dashboards", "idle", "slowdisk", "compaction", "scaling"}

// Options configure Run. Zero fields take the defaults stated.
type Options struct {
	Binary string // the lablog binary to measure (required)
	// FailpointBinary is a lablog built with -tags failpoint, for the slow
	// disk rows (the buffer-fsync failpoint delays each fsync); default
	// Binary when it is such a build, else those rows are left out, saying so.
	FailpointBinary string
	Exec            string        // run children under this command, e.g. qemu-aarch64-static
	Runs            int           // repetitions of each figure; default 3 (1 with Quick)
	Duration        time.Duration // load per ingest run; default 8s (2s with Quick)
	Quick           bool          // a small, fast bench: tests and emulated arm64
	Only            []string      // scenarios to run; default all
	Dir             string        // scratch space; default os.TempDir()
	CompactRows     int           // rows in the compaction buffer; default 2,000,000 (20,000 with Quick)
	ScaleSizes      []int         // streams in the scaling runs; default 1, 10, 100, 1000 (1, 10 with Quick)
	Logger          *slog.Logger  // progress; default discards
}

func (o *Options) setDefaults() error {
	if o.Binary == "" {
		return errors.New("bench: no lablog binary given")
	}
	if o.Runs <= 0 {
		o.Runs = 3
		if o.Quick {
			o.Runs = 1
		}
	}
	if o.Duration <= 0 {
		o.Duration = 8 * time.Second
		if o.Quick {
			o.Duration = 2 * time.Second
		}
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	if o.CompactRows <= 0 {
		o.CompactRows = 2_000_000
		if o.Quick {
			o.CompactRows = 20_000
		}
	}
	if len(o.ScaleSizes) == 0 {
		o.ScaleSizes = []int{1, 10, 100, 1000}
		if o.Quick {
			o.ScaleSizes = []int{1, 10}
		}
	}
	for _, s := range o.Only {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("bench: unknown scenario %q (have %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

func (o *Options) wants(scenario string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, scenario)
}

// runner holds what the scenarios share.
type runner struct {
	o     *Options
	rep   *Report
	log   *slog.Logger
	dir   string
	pools map[int]pool
}

func (r *runner) runDir(what string) (string, error) {
	d, err := os.MkdirTemp(r.dir, what+"-")
	if err != nil {
		return "", fmt.Errorf("bench scratch: %w", err)
	}
	return d, nil
}

// stage makes what one measurement of a load needs: a scratch folder and
// the loopback server; done removes both (defer it before stopping a child,
// so the child is gone first: defers run last-in first-out).
func (r *runner) stage(what string) (dir string, s *server, done func(), err error) {
	if dir, err = r.runDir(what); err != nil {
		return "", nil, nil, err
	}
	if s, err = newServer(); err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	return dir, s, func() { s.close(); os.RemoveAll(dir) }, nil
}

// connectTimeout bounds the wait for n streams to connect and settle.
func (r *runner) connectTimeout(n int) time.Duration {
	d := 20*time.Second + time.Duration(n)*30*time.Millisecond
	if r.o.Exec != "" {
		// An emulated child starts 5-10 times slower (qemu-user), and
		// more so on a loaded machine.
		d *= 5
	}
	return d
}

// drainTimeout bounds the wait for the last frames after the load stops.
func (r *runner) drainTimeout() time.Duration {
	if r.o.Quick {
		return 10 * time.Second
	}
	return 30 * time.Second
}

// pool is the flat-out traffic of n streams, made once.
func (r *runner) pool(ctx context.Context, n int) (pool, error) {
	if p, ok := r.pools[n]; ok {
		return p, nil
	}
	p, err := makePool(ctx, streamNames(n), 6000, 7)
	if err != nil {
		return nil, err
	}
	r.pools[n] = p
	return p, nil
}

// Run measures and returns the table; it stops at the first failure.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "lablog-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench scratch: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &runner{o: &o, rep: &Report{}, log: o.Logger, dir: dir, pools: map[int]pool{}}
	r.header(ctx)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ingest", r.ingest}, {"baseline", r.baseline}, {"http", r.http}, {"dashboards", r.dashboards}, {"idle", r.idle},
		{"slowdisk", r.slowDisk}, {"compaction", r.compaction}, {"scaling", r.scaling},
	}
	for _, s := range steps {
		if !o.wants(s.name) {
			continue
		}
		r.log.Info("bench: scenario", "name", s.name)
		if err := s.fn(ctx); err != nil {
			return r.rep, fmt.Errorf("bench %s: %w", s.name, err)
		}
	}
	if o.wants("ingest") && o.wants("baseline") {
		r.ratios()
	}
	return r.rep, nil
}

func (r *runner) header(ctx context.Context) {
	version := "unknown"
	if out, err := r.o.command(ctx, "version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	h := []string{
		fmt.Sprintf("lablog bench: %s (%s), %s/%s, %d CPUs, %d runs per figure (median, min, max), %v of load per run, %s",
			filepath.Base(r.o.Binary), version, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.o.Runs, r.o.Duration, time.Now().UTC().Format(time.DateOnly)),
	}
	if r.o.Exec != "" || r.o.Quick {
		h = append(h, "QUICK/EMULATED MODE: these figures are for correctness and relative cost only, not for performance claims.")
	}
	r.rep.Header = h
}

// Targets from the performance issue, by figure.
var (
	flatTargets = map[string]string{"committed": ">= 200000", "dropped": "0"}
	busyTargets = map[string]string{"commit p99": "< 10 ms", "dropped": "0", "peak RSS (VmHWM)": "< 30 MiB", "queue depth peak": "no growth"}
	slowTargets = map[string]string{"commit p99": "< 50 ms", "dropped": "0", "queue depth peak": "no growth"}
)

func (r *runner) ingest(ctx context.Context) error {
	loads := []struct {
		name    string
		l       load
		targets map[string]string
	}{
		{"ingest 12 x 2 msg/s", load{streams: 12, rate: 2}, map[string]string{"dropped": "0"}},
		{"ingest 80 x 20 msg/s", load{streams: 80, rate: 20}, busyTargets},
		// Offered faster than any writer commits: what it commits at most.
		{"ingest flat out, 12 streams", load{streams: 12}, nil},
		// Offered at the target rate: committed in full, or not.
		{"ingest 12 streams offered 200k msg/s", load{streams: 12, total: 200_000}, flatTargets},
	}
	for _, x := range loads {
		for i := range r.o.Runs {
			g, err := r.measureIngest(ctx, x.l, r.o.Duration, uint64(i+1))
			if err != nil {
				return err
			}
			r.addIngest(x.name, g, x.targets)
		}
	}
	return nil
}

func (r *runner) baseline(ctx context.Context) error {
	loads := []struct {
		name string
		l    load
	}{
		{"baseline 80 x 20 msg/s", load{streams: 80, rate: 20}},
		{"baseline flat out, 12 streams", load{streams: 12}},
	}
	for _, x := range loads {
		for i := range r.o.Runs {
			b, err := r.measureBaseline(ctx, x.l, r.o.Duration, uint64(i+1))
			if err != nil {
				return err
			}
			r.rep.add(x.name, "committed", "msg/s", "", b.lines/b.elapsed)
			r.rep.add(x.name, "fsyncs per message", "", "", ratio(b.fsyncs, b.lines))
		}
	}
	return nil
}

// ratios compares lablog with the baseline, medians against medians.
func (r *runner) ratios() {
	med := func(sc, fig string) float64 {
		if row := r.rep.Find(sc, fig); row != nil {
			return row.Summary().Median
		}
		return 0
	}
	f := r.rep.add("lablog vs baseline", "fewer fsyncs per message at 80 x 20 msg/s", "x", ">= 50",
		ratio(med("baseline 80 x 20 msg/s", "fsyncs per message"), med("ingest 80 x 20 msg/s", "fsyncs per message")))
	f.Derived = true
	m := r.rep.add("lablog vs baseline", "more msg/s committed flat out", "x", ">= 20",
		ratio(med("ingest flat out, 12 streams", "committed"), med("baseline flat out, 12 streams", "committed")))
	m.Derived = true
}

func (r *runner) idle(ctx context.Context) error {
	for i := range r.o.Runs {
		// Twice the load time: idle CPU is counted in 10 ms ticks.
		g, err := r.measureScale(ctx, 80, 2*r.o.Duration, 0, uint64(i+1))
		if err != nil {
			return err
		}
		r.rep.add("idle, 80 silent streams", "CPU", "% core", "< 1", g.idleCPU)
		r.rep.add("idle, 80 silent streams", "RSS", "MiB", "", g.idleMem.RSS/(1<<20))
		r.rep.add("idle, 80 silent streams", "RSS anon", "MiB", "", g.idleMem.Anon/(1<<20))
		r.rep.add("idle, 80 silent streams", "RSS file", "MiB", "", g.idleMem.File/(1<<20))
		r.rep.add("idle, 80 silent streams", "peak RSS (VmHWM)", "MiB", "< 30", g.idleMem.HWM/(1<<20))
	}
	return nil
}

// slowDisk runs the busy load with each fsync of the buffer delayed, as on
// an SD card, in a failpoint build of the binary.
func (r *runner) slowDisk(ctx context.Context) error {
	bin := r.o.FailpointBinary
	if bin == "" {
		bin = r.o.Binary
	}
	o := *r.o
	o.Binary = bin
	if out, err := o.command(ctx, "version").Output(); err != nil || !strings.Contains(string(out), failpoint.VersionNote) {
		r.rep.note("slow disk: left out: %s is not a failpoint build (go build -tags failpoint; make bench passes one with --failpoint-binary)", filepath.Base(bin))
		return nil
	}
	if bin != r.o.Binary {
		r.rep.note("slow disk: measured with %s, a failpoint build of the same source (its fsync delay is a failpoint)", filepath.Base(bin))
	}
	slow := &runner{o: &o, rep: r.rep, log: r.log, dir: r.dir, pools: r.pools}
	for _, delay := range []string{"10ms", "10ms+70ms@2"} {
		name := fmt.Sprintf("slow disk %s, 80 x 20 msg/s", delay)
		for i := range r.o.Runs {
			l := load{streams: 80, rate: 20, env: []string{failpoint.EnvVar + "=" + buffer.FailFsync + ":delay:" + delay}}
			g, err := slow.measureIngest(ctx, l, r.o.Duration, uint64(i+1))
			if err != nil {
				return err
			}
			r.addIngest(name, g, slowTargets)
		}
	}
	return nil
}

func (r *runner) compaction(ctx context.Context) error {
	dir, err := r.runDir("compaction-source")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r.log.Info("bench: building the compaction buffer", "rows", r.o.CompactRows)
	b, err := buildBuffer(ctx, dir, r.o.CompactRows)
	if err != nil {
		return err
	}
	upDir, err := r.runDir("compaction-caught-up")
	if err != nil {
		return err
	}
	defer os.RemoveAll(upDir)
	caughtUp, err := withStoreCaughtUp(b, upDir)
	if err != nil {
		return err
	}
	for _, x := range []struct {
		scenario string
		b        *builtBuffer
	}{
		// lablog compact on a buffer no store has read: it counts every
		// record for the dashboards as it archives them.
		{fmt.Sprintf("compaction, %d rows", b.rows), b},
		// The daemon's hourly run: its store has followed the commits.
		{fmt.Sprintf("compaction, %d rows, store caught up (daemon)", b.rows), caughtUp},
	} {
		if err := r.measureCompactions(ctx, x.scenario, x.b); err != nil {
			return err
		}
	}
	return nil
}

// measureCompactions adds r.o.Runs runs of lablog compact on b to the
// report as scenario sc.
func (r *runner) measureCompactions(ctx context.Context, sc string, b *builtBuffer) error {
	for range r.o.Runs {
		c, err := r.measureCompaction(ctx, b)
		if err != nil {
			return err
		}
		if c.records != b.rows {
			r.rep.note("compaction: lablog compact reported %d records (frames; glued ones hold several) for %d messages", c.records, b.rows)
		}
		mib := float64(1 << 20)
		r.rep.add(sc, "rows", "/s", ">= 150000", float64(b.rows)/c.seconds)
		r.rep.add(sc, "rows per CPU second", "/s", "", float64(b.rows)/c.cpuSeconds)
		// VmHWM, not rusage: a child's ru_maxrss also counts the bench's
		// own resident set at the fork (the two share it until the exec),
		// and after building a buffer that can be more than the child's.
		r.rep.add(sc, "peak RSS (VmHWM)", "MiB", "< 100", c.mem.HWM/mib)
		r.rep.add(sc, "peak RSS (rusage)", "MiB", "", c.maxRSS/mib)
		r.rep.add(sc, "peak RSS anon", "MiB", "", c.mem.Anon/mib)
		r.rep.add(sc, "peak RSS file", "MiB", "", c.mem.File/mib)
		r.rep.add(sc, "Parquet bytes per message", "B", "", float64(c.parquetBytes)/float64(b.rows))
		r.rep.add(sc, "Parquet / raw JSON", "", "<= 0.167", float64(c.parquetBytes)/float64(b.rawBytes))
	}
	r.rep.add(sc, "raw JSON bytes per message", "B", "", float64(b.rawBytes)/float64(b.rows)).Derived = true
	r.rep.add(sc, "buffer bytes per message", "B", "", float64(b.size)/float64(b.rows)).Derived = true
	return nil
}

func (r *runner) scaling(ctx context.Context) error {
	d := max(r.o.Duration/2, time.Second)
	for _, n := range r.o.ScaleSizes {
		for i := range r.o.Runs {
			g, err := r.measureScale(ctx, n, d, d, uint64(i+1))
			if err != nil {
				return err
			}
			r.addScale(n, g)
		}
	}
	r.scalingNotes(r.o.ScaleSizes)
	return nil
}
