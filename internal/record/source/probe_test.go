package source

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/sim/labsim"
)

// endpoint is an HTTP server whose answers the test switches: up answers
// 404 (any answer below 500 is up, as a relay's access base answers a
// GET), down answers 502 (a proxy in front of a stopped relay).
type endpoint struct {
	*httptest.Server
	down     atomic.Bool
	downSeen atomic.Int64 // requests answered while down
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if e.down.Load() {
			e.downSeen.Add(1)
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(e.Close)
	return e
}

func fastProbe(url string) *Probe {
	return &Probe{URL: url, Interval: 10 * time.Millisecond, Spread: time.Millisecond}
}

// An endpoint seen down and then up wakes every waiter long before its
// wait ends.
func TestProbeWakesWaitersWhenEndpointComesBack(t *testing.T) {
	e := newEndpoint(t)
	e.down.Store(true)
	p := fastProbe(e.URL)
	woke := make(chan time.Duration, 3)
	for range 3 {
		go func() {
			start := time.Now()
			p.Wait(context.Background(), time.Hour)
			woke <- time.Since(start)
		}()
	}
	deadline := time.After(10 * time.Second)
	for e.downSeen.Load() < 2 {
		select {
		case <-deadline:
			t.Fatal("the probe did not ask the endpoint while streams waited")
		case <-time.After(5 * time.Millisecond):
		}
	}
	e.down.Store(false)
	for range 3 {
		select {
		case <-woke:
		case <-deadline:
			t.Fatal("a waiter was not woken when the endpoint came back")
		}
	}
}

// An endpoint that is up all along (or keeps failing) wakes no one: the
// backoff's wait is kept, so a stream failing for another reason (a bad
// token) is not retried at the probe's pace.
func TestProbeKeepsTheWaitWithoutAComeback(t *testing.T) {
	for _, down := range []bool{false, true} {
		e := newEndpoint(t)
		e.down.Store(down)
		p := fastProbe(e.URL)
		const wait = 300 * time.Millisecond
		start := time.Now()
		if !p.Wait(context.Background(), wait) {
			t.Fatal("Wait reported a cancelled context")
		}
		if took := time.Since(start); took < wait {
			t.Errorf("down=%v: the wait ended after %v, before its %v", down, took, wait)
		}
		if p.Checks() < 2 {
			t.Errorf("down=%v: %d requests during the wait, want the probe asking every interval", down, p.Checks())
		}
	}
}

// Unreachable is down; nobody waiting means no requests.
func TestProbeUnreachableIsDownAndIdleProbeIsQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := fastProbe("http://" + addr + "/")
	if p.check(make(chan struct{})) {
		t.Error("a closed port counted as up")
	}
	e := newEndpoint(t)
	p = fastProbe(e.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.Wait(ctx, time.Hour) {
		t.Error("Wait with a cancelled context said go on")
	}
	p.mu.Lock()
	waiters, running := p.waiters, p.stop != nil
	p.mu.Unlock()
	if waiters != 0 || running {
		t.Errorf("after the last waiter left: %d waiters, probing %v", waiters, running)
	}
}

// A stream whose endpoint was down for longer than the fast window is back
// within about the probe's interval of the endpoint, not after its long
// backoff (here every wait is its ceiling: 30 s, then 60 s).
func TestProbeBringsStreamBackAfterLongOutage(t *testing.T) {
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := host.Addr()
	host.Close() // down from the start: every dial fails
	cfg := fastConfig("spin30", "ws://"+addr+"/ws/spin30")
	cfg.MinBackoff, cfg.MaxBackoff, cfg.FastRetryFor = 30*time.Second, time.Minute, -1
	cfg.Probe = fastProbe("http://" + addr + "/healthcheck")
	s := New(cfg, newSink())
	s.backoff.Rand = func(n int64) int64 { return n - 1 } // no lucky short wait
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// The first dial fails at once; the stream then waits out its 30 s
	// backoff, with the probe watching.
	for deadline := time.Now().Add(10 * time.Second); cfg.Probe.Checks() < 3; {
		if time.Now().After(deadline) {
			t.Fatal("the probe did not run while the stream waited")
		}
		time.Sleep(5 * time.Millisecond)
	}
	back, err := labsim.NewHost(addr)
	if err != nil {
		t.Fatalf("restart the host on %s: %v", addr, err)
	}
	defer back.Close()
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := back.WaitClients(wctx, "spin30", 1); err != nil {
		t.Fatalf("the stream did not come back within 10 s of its host (its backoff was 30 s or more): %v", err)
	}
}
