package source

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/practable/lablog/internal/platform/waitfor"
)

// Probe watches one endpoint that several streams dial (a relay, a relay
// host) for the moment it comes back. While any stream waits out a long
// backoff, the probe asks the endpoint every Interval with one cheap request
// and, when it sees the endpoint down and then up, cuts every waiting
// stream's wait short: after an outage longer than the fast window, the
// streams are back within about Interval of the endpoint instead of up to
// MaxBackoff later, and a relay that stays down gets one request per
// Interval, however many streams wait on it.
type Probe struct {
	URL      string        // http(s) URL to GET; any answer below 500 means up
	Interval time.Duration // between requests; default 2s
	Spread   time.Duration // woken streams dial within this, at random; default 1s
	Client   *http.Client  // default: a 2 s timeout, redirects not followed

	mu      sync.Mutex
	waiters int
	back    chan struct{} // closed when the endpoint is seen to come back
	stop    chan struct{} // ends the probing goroutine once nobody waits
	wasDown bool          // the endpoint failed a request since the last wake
	checks  int           // requests made, for tests
}

// Defaults of Probe.
const (
	DefaultProbeInterval = 2 * time.Second
	DefaultProbeSpread   = time.Second
)

// NewProbe watches url with the defaults.
func NewProbe(url string) *Probe {
	return &Probe{URL: url}
}

// Wait waits d, or less if the endpoint comes back meanwhile (then after a
// random part of Spread, so the woken streams do not all dial at once). It
// reports whether to go on: false when ctx ended.
func (p *Probe) Wait(ctx context.Context, d time.Duration) bool {
	back := p.join()
	defer p.leave()
	goOn, woken := waitfor.SleepUnless(ctx, d, back)
	if !woken {
		return goOn
	}
	return waitfor.Sleep(ctx, time.Duration(rand.Int64N(int64(p.spread())+1)))
}

func (p *Probe) join() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.back == nil {
		p.back = make(chan struct{})
	}
	p.waiters++
	if p.waiters == 1 {
		p.stop = make(chan struct{})
		go p.watch(p.stop)
	}
	return p.back
}

func (p *Probe) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiters--
	if p.waiters == 0 {
		close(p.stop)
		p.stop = nil
		// Whoever waits next learns afresh: a down seen long ago is no
		// reason to wake anyone now.
		p.wasDown = false
	}
}

// watch asks the endpoint at once and then every Interval until stop.
func (p *Probe) watch(stop <-chan struct{}) {
	t := time.NewTicker(p.interval())
	defer t.Stop()
	for {
		up := p.check(stop)
		p.mu.Lock()
		select {
		case <-stop: // nobody waits any more: what was seen is moot
			p.mu.Unlock()
			return
		default:
		}
		p.checks++
		switch {
		case !up:
			p.wasDown = true
		case p.wasDown:
			p.wasDown = false
			close(p.back)
			p.back = make(chan struct{})
		}
		p.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// check reports whether the endpoint answers below 500; stop cancels it.
func (p *Probe) check(stop <-chan struct{}) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return false
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return resp.StatusCode < http.StatusInternalServerError
}

// Checks is how many requests the probe has made.
func (p *Probe) Checks() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checks
}

func (p *Probe) interval() time.Duration {
	if p.Interval > 0 {
		return p.Interval
	}
	return DefaultProbeInterval
}

func (p *Probe) spread() time.Duration {
	if p.Spread > 0 {
		return p.Spread
	}
	return DefaultProbeSpread
}

var probeClient = &http.Client{
	Timeout:       2 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (p *Probe) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return probeClient
}
