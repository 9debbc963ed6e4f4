package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The HTTP ingest load: today's lab UIs' /addLog calls from keep-alive
// clients, flat out and at a steady rate, to lablog and to the baseline.
const (
	httpClients = 16
	// httpSteadyClients play the browsers of a steady load: each UI posts
	// and forgets, so calls do not queue behind one another's answers as
	// they do behind 16 closed-loop clients. Each comes from its own
	// loopback address, as students' browsers come from their own.
	httpSteadyClients = 128
	httpSteadyRate    = 1000
	httpUser          = "bench-ui"
	httpPass          = "bench-pa55"
)

// The loads' names in the table.
var (
	flatName   = fmt.Sprintf("flat out, %d clients", httpClients)
	steadyName = fmt.Sprintf("%d statements/s, %d clients", httpSteadyRate, httpSteadyClients)
)

// clientsFor is how many clients drive a load: 16 flat out, a browser's
// worth at a steady rate.
func clientsFor(rate float64) int {
	if rate > 0 {
		return httpSteadyClients
	}
	return httpClients
}

// httpMeasure is what one drive measured, of lablog or of the baseline.
type httpMeasure struct {
	run       httpRun
	committed float64 // statements made durable, acknowledged or cut off by the drive's end
	fsyncs    float64
	serverCPU float64 // seconds: the lablog child's (NaN for the in-process baseline)
	benchCPU  float64 // seconds: this process's (load generator, and the baseline server)
}

func (r *runner) http(ctx context.Context) error {
	calls := makeStatements(4096, 22)
	loads := []struct {
		name       string
		rate       float64
		bufferKeys string            // the child's, besides its path
		liveOff    bool              // without the live analytics store
		targets    map[string]string // lablog's, from the issue
		baseline   bool              // measure the baseline on it too
	}{
		{flatName, 0, "", false, map[string]string{"acknowledged": ">= 20000", "refused": "0"}, true},
		{steadyName, httpSteadyRate, "", false, map[string]string{"latency p99": "< 20 ms", "refused": "0"}, true},
		// What the default commit_interval costs a client that waits for its commit.
		{flatName + ", commit_interval 0s", 0, "commit_interval: 0s", false, nil, false},
		{steadyName + ", commit_interval 0s", httpSteadyRate, "commit_interval: 0s", false, nil, false},
		// What the live store (students' matrices, the dashboards' state) costs ingest.
		{steadyName + ", analytics.live off", httpSteadyRate, "", true, nil, false},
	}
	for _, l := range loads {
		// lablog and the baseline take turns, run after run, on the same calls.
		for range r.o.Runs {
			m, err := r.measureHTTPLablog(ctx, calls, l.rate, l.bufferKeys, l.liveOff)
			if err != nil {
				return err
			}
			r.addHTTP("http ingest "+l.name, m, l.targets)
			if !l.baseline {
				continue
			}
			if m, err = r.measureHTTPBaseline(ctx, calls, l.rate); err != nil {
				return err
			}
			r.addHTTP("http baseline "+l.name, m, nil)
		}
	}
	med := func(sc, fig string) float64 {
		if row := r.rep.Find(sc, fig); row != nil {
			return row.Summary().Median
		}
		return ratio(0, 0)
	}
	for _, name := range []string{flatName, steadyName} {
		lab, base := "http ingest "+name, "http baseline "+name
		r.rep.add("lablog vs http baseline", "fewer fsyncs per statement, "+name, "x", ">= 50",
			ratio(med(base, "fsyncs per statement"), med(lab, "fsyncs per statement"))).Derived = true
		r.rep.add("lablog vs http baseline", "more statements/s acknowledged, "+name, "x", "",
			ratio(med(lab, "acknowledged"), med(base, "acknowledged"))).Derived = true
	}
	on, off := "http ingest "+steadyName, "http ingest "+steadyName+", analytics.live off"
	for _, fig := range []string{"server CPU", "fsyncs per statement", "latency p99"} {
		r.rep.add("live store on vs off", fig+", "+steadyName, "x", "",
			ratio(med(on, fig), med(off, fig))).Derived = true
	}
	r.rep.note("http: the load generator runs in the bench process on the same cores; \"bench CPU\" is its share (with the baseline server in the baseline rows). Pin it apart with taskset (docs/performance.md).")
	return nil
}

// measureHTTPLablog starts a child with only an addlog listener, drives it
// and reads its fsyncs; every acknowledged statement must be committed.
func (r *runner) measureHTTPLablog(ctx context.Context, calls []statementCall, rate float64, bufferKeys string, liveOff bool) (httpMeasure, error) {
	var m httpMeasure
	dir, err := r.runDir("http")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	creds := filepath.Join(dir, "addlog-credentials")
	if err := os.WriteFile(creds, []byte(httpUser+":"+httpPass+"\n"), 0o600); err != nil {
		return m, fmt.Errorf("http credentials: %w", err)
	}
	listen, err := freePort()
	if err != nil {
		return m, err
	}
	sections := fmt.Sprintf("addlog: {listen: %q, credentials_file: %q, allowed_origins: [\"*\"]}\nstreams: []\n", listen, creds)
	if liveOff {
		sections = fmt.Sprintf("addlog: {listen: %q, credentials_file: %q, allowed_origins: [\"*\"], dashboards: {serve: false}}\n"+
			"analytics: {live: false}\nstreams: []\n", listen, creds)
	}
	c, err := launchChild(ctx, r.o, dir, bufferKeys, sections)
	if err != nil {
		return m, err
	}
	defer c.stop()
	wait, cancel := context.WithTimeout(ctx, r.connectTimeout(0))
	err = c.awaitURL(wait, "http://"+listen+"/healthz")
	cancel()
	if err != nil {
		return m, err
	}
	before, err := scrape(ctx, c.base)
	if err != nil {
		return m, err
	}
	cpu0, err := cpuSeconds(c.pid())
	if err != nil {
		return m, err
	}
	bench0 := selfCPU()
	m.run = driveHTTP(ctx, httpTarget{url: "http://" + listen + "/addLog", user: httpUser, pass: httpPass}, calls, clientsFor(rate), rate, r.o.Duration)
	m.benchCPU = selfCPU() - bench0
	cpu1, err := cpuSeconds(c.pid())
	if err != nil {
		return m, err
	}
	m.serverCPU = cpu1 - cpu0
	after, err := scrape(ctx, c.base)
	if err != nil {
		return m, err
	}
	// A 204 promises a commit: a shortfall is a broken promise, not a figure.
	if committed := after.Committed - before.Committed; committed < float64(m.run.acked) {
		return m, c.failed(fmt.Errorf("http: %d statements acknowledged, only %v committed", m.run.acked, committed))
	}
	m.committed, m.fsyncs = after.Committed-before.Committed, after.Fsyncs-before.Fsyncs
	return m, nil
}

// measureHTTPBaseline drives the fsync-per-statement server in the bench.
func (r *runner) measureHTTPBaseline(ctx context.Context, calls []statementCall, rate float64) (httpMeasure, error) {
	m := httpMeasure{serverCPU: ratio(0, 0)}
	dir, err := r.runDir("http-baseline")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	s, err := newFsyncServer(dir, httpUser, httpPass)
	if err != nil {
		return m, err
	}
	bench0 := selfCPU()
	m.run = driveHTTP(ctx, httpTarget{url: s.url(), user: httpUser, pass: httpPass}, calls, clientsFor(rate), rate, r.o.Duration)
	m.benchCPU = selfCPU() - bench0
	m.committed, m.fsyncs = float64(s.lines.Load()), float64(s.fsyncs.Load())
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return m, s.close(sctx)
}

// addHTTP puts one drive's figures in the table under scenario.
func (r *runner) addHTTP(scenario string, m httpMeasure, targets map[string]string) {
	add := func(fig, unit string, v float64) { r.rep.add(scenario, fig, unit, targets[fig], v) }
	g := m.run
	add("acknowledged", "statements/s", float64(g.acked)/g.elapsed)
	add("refused", "statements/s", float64(g.refused)/g.elapsed)
	add("latency p50", "ms", quantile(g.latencies, 0.5))
	add("latency p99", "ms", quantile(g.latencies, 0.99))
	add("fsyncs per statement", "", ratio(m.fsyncs, m.committed))
	add("server CPU", "% core", 100*m.serverCPU/g.elapsed)
	add("bench CPU", "% core", 100*m.benchCPU/g.elapsed)
	if g.firstRefusal != "" {
		r.rep.note("%s: refused, e.g. %s", scenario, g.firstRefusal)
	}
}

// selfCPU is the user plus system CPU time of this process so far.
func selfCPU() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return ratio(0, 0)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}
