package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/practable/lablog/internal/platform/defaults"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/retrylog"
	"github.com/practable/lablog/internal/platform/waitfor"
	"github.com/practable/lablog/internal/record/source"
)

// Provisioner keeps a relay host's destination rules in place for a set of
// streams, replacing the old session-rules script and its "sleep 10": it
// waits for the host's healthcheck, posts one rule per stream (ID = stream
// name), then checks every Interval that each rule is there and current,
// re-posting what a restarted host lost or what a renewed token file
// changed. A stream whose token cannot work gets no rule (the host would
// retry it forever); other rules for the same stream are deleted, since
// each would deliver every frame once more.
type Provisioner struct {
	o   ProvisionOptions
	log *slog.Logger // o.Logger with the host

	mu    sync.Mutex
	stats ProvisionStats
	told  map[string]string // stream -> what was last logged about it

	// Owned by Run.
	failures   retrylog.Run  // the current run of failures with the host
	healthWait time.Duration // the pause after the next failed healthcheck
}

// ProvisionOptions configure a Provisioner.
type ProvisionOptions struct {
	API      *HostAPI
	Streams  []Credentials
	Interval time.Duration    // between checks; default DefaultInterval
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // default slog.Default()
}

// NewProvisioner makes a Provisioner; Run keeps the rules.
func NewProvisioner(o ProvisionOptions) *Provisioner {
	defaults.Positive(&o.Interval, DefaultInterval)
	defaults.Clock(&o.Now)
	defaults.Logger(&o.Logger)
	return &Provisioner{o: o, log: o.Logger.With("relay_host", o.API.Base())}
}

// ProvisionStats tell how a host's rules are kept, for the status page.
type ProvisionStats struct {
	Host      string
	Healthy   bool      // the last healthcheck or check succeeded
	LastSync  time.Time // when the rules were last found (or made) complete
	Rules     int       // rules lablog wants on the host
	Posts     int64     // rules posted: added, replaced after a restart, renewed
	Deletes   int64     // rules deleted: unusable tokens, duplicates
	LastError string
	// Streams is each stream's provisioning state (Provision* constants)
	// and, unless its rule is posted, why.
	Streams map[string]StreamProvision
}

// StreamProvision is how one stream's rule stands.
type StreamProvision struct {
	State  string // a Provision* constant
	Detail string // why, when State is not ProvisionRulePosted
}

// Provisioning states of a stream (StreamProvision.State).
const (
	ProvisionWaiting         = "waiting"          // not checked yet
	ProvisionRulePosted      = "rule_posted"      // the host holds the current rule
	ProvisionHostUnreachable = "host_unreachable" // no answer: no rule can be checked or posted
	ProvisionHostUnexpected  = "host_unexpected"  // the host answers, but not as a relay host does
	ProvisionTokenExpired    = "token_expired"    // no rule: the host would retry it forever
	ProvisionTokenInvalid    = "token_invalid"    // no rule: token missing, for another topic, ...
)

// DefaultInterval is how often a Provisioner checks the host's rules.
const DefaultInterval = 5 * time.Second

// Stats returns a snapshot; safe from any goroutine.
func (p *Provisioner) Stats() ProvisionStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Host = p.o.API.Base()
	s.Streams = make(map[string]StreamProvision, len(p.o.Streams))
	for _, c := range p.o.Streams {
		sp, ok := p.stats.Streams[c.Stream]
		if !ok {
			sp.State = ProvisionWaiting
		}
		s.Streams[c.Stream] = sp
	}
	return s
}

// setStream records stream's state; p.mu must not be held.
func (p *Provisioner) setStream(stream, state, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stats.Streams == nil {
		p.stats.Streams = map[string]StreamProvision{}
	}
	p.stats.Streams[stream] = StreamProvision{State: state, Detail: detail}
}

// Run keeps the rules until ctx ends, then returns nil.
//
// Every failure pauses before the next attempt: a healthcheck that fails is
// asked again quickly at first (the host is starting or restarting, and its
// rules are posted as soon as it answers), doubling to Interval; a check of
// the rules that fails while the healthcheck still passes (the API is
// broken) waits Interval, doubling to MaxPause, since asking again at once
// would only fail again, hundreds of times a second. A run of failures is
// logged once, then once per retrylog.Every.
func (p *Provisioner) Run(ctx context.Context) error {
	p.told = map[string]string{}
	p.healthWait = firstHealthWait
	pause := time.Duration(0) // after the last failed check of the rules
	for ctx.Err() == nil {
		if !p.awaitHealthy(ctx) {
			return nil
		}
		if p.failures.Failures() == 0 {
			p.log.Info("relay host is up: provisioning rules", "streams", len(p.o.Streams))
		}
		for {
			err := p.sync(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				p.failed(err)
				p.failures.Failed(ctx, p.log, p.o.Now(), "cannot check relay host rules: retrying with backoff",
					"still cannot check relay host rules", err)
				break
			}
			p.failures.Ended(p.log, p.o.Now(), "relay host rules checked after failing")
			p.healthWait, pause = firstHealthWait, 0
			if !waitfor.Sleep(ctx, p.o.Interval) {
				return nil
			}
		}
		if p.o.API.Healthy(ctx) != nil {
			continue // down: awaitHealthy sees it back, and the rules go at once
		}
		pause = min(max(2*pause, p.o.Interval), max(p.o.Interval, MaxPause))
		if !waitfor.Sleep(ctx, pause) {
			return nil
		}
	}
	return nil
}

// MaxPause bounds the backoff after failed checks of the rules (unless
// Interval is longer).
const MaxPause = time.Minute

// firstHealthWait is the first pause after a failed healthcheck: a host
// that is starting is seen quickly.
const firstHealthWait = 100 * time.Millisecond

// awaitHealthy polls the healthcheck until it answers ok or ctx ends,
// quickly at first, doubling to Interval; the pace carries over from one
// call to the next until the rules are checked, so a host that keeps
// failing is asked at most once per Interval.
func (p *Provisioner) awaitHealthy(ctx context.Context) bool {
	unexpected := "" // the unexpected answer last warned about
	for {
		err := p.o.API.Healthy(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.failed(err)
		if errors.Is(err, ErrUnexpectedAnswer) {
			// Something answers, but not a relay host: no rule will ever be
			// posted. Warned once per answer; the status page keeps showing it.
			if err.Error() != unexpected {
				unexpected = err.Error()
				p.log.Warn("the relay host answers unexpectedly; no rules posted until it answers as a relay host", logkey.Err, err)
			}
		} else {
			p.failures.Failed(ctx, p.log, p.o.Now(), "waiting for the relay host", "still waiting for the relay host", err)
		}
		if !waitfor.Sleep(ctx, p.healthWait) {
			return false
		}
		p.healthWait = min(2*p.healthWait, p.o.Interval)
	}
}

// sync makes the host's rules what they should be.
func (p *Provisioner) sync(ctx context.Context) error {
	have, err := p.o.API.All(ctx)
	if err != nil {
		return err
	}
	now := p.o.Now()
	want := 0
	for _, c := range p.o.Streams {
		rule, problem := p.desired(c, now)
		cur, ok := have[c.Stream]
		switch {
		case problem != nil:
			p.setStream(c.Stream, tokenProblem(problem), problem.Error())
			p.tell(c.Stream, slog.LevelError, "no relay host rule: "+problem.Error())
			if ok {
				if err := p.o.API.Delete(ctx, c.Stream); err != nil {
					return err
				}
				p.count(0, 1)
			}
		case !ok || cur != rule:
			why := "rule missing: posting it"
			if ok {
				why = "rule differs: replacing it"
			}
			// Every post is news (start, host restart, renewal): always
			// logged, before it is done.
			p.told[c.Stream] = why
			p.log.Info(why, logkey.Stream, c.Stream, "destination", redact(rule.Destination))
			if err := p.o.API.Put(ctx, rule); err != nil {
				return err
			}
			p.count(1, 0)
			p.setStream(c.Stream, ProvisionRulePosted, "")
			want++
		default:
			want++
			p.setStream(c.Stream, ProvisionRulePosted, "")
			p.tell(c.Stream, slog.LevelDebug, "rule in place")
		}
		if err := p.dropDuplicates(ctx, have, c.Stream); err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.stats.Healthy, p.stats.LastSync, p.stats.Rules, p.stats.LastError = true, now, want, ""
	p.mu.Unlock()
	return nil
}

// desired is the rule stream c should have, or why it should have none.
func (p *Provisioner) desired(c Credentials, now time.Time) (Rule, error) {
	l, err := c.Load(now)
	if err != nil {
		return Rule{}, err
	}
	return Rule{ID: c.Stream, Stream: c.Stream, Destination: l.Access, Token: l.Token}, nil
}

// dropDuplicates deletes rules with another ID for the same stream: the
// host would open a second upstream and every frame would arrive twice.
func (p *Provisioner) dropDuplicates(ctx context.Context, have map[string]Rule, stream string) error {
	var ids []string
	for id, r := range have {
		if id != stream && r.Stream == stream {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.log.Warn("deleting another rule for a stream lablog provisions (it would duplicate every frame)",
			logkey.Stream, stream, "rule", have[id])
		if err := p.o.API.Delete(ctx, id); err != nil {
			return err
		}
		p.count(0, 1)
	}
	return nil
}

// tell logs a stream's state when it changes, so a steady state (or a
// steady problem) is quiet.
func (p *Provisioner) tell(stream string, level slog.Level, msg string) {
	if p.told[stream] == msg {
		return
	}
	p.told[stream] = msg
	p.log.Log(context.Background(), level, msg, logkey.Stream, stream)
}

func (p *Provisioner) count(posts, deletes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Posts += posts
	p.stats.Deletes += deletes
}

// tokenProblem is the state of a stream whose credentials cannot work.
func tokenProblem(problem error) string {
	var b *source.Blocked
	if errors.As(problem, &b) && b.TokenState == source.TokenExpired {
		return ProvisionTokenExpired
	}
	return ProvisionTokenInvalid
}

// failed records a failure of the host: every stream is then unreachable
// or answered unexpectedly, unless its token could not work anyway, which
// is the thing to fix first and is known without the host.
func (p *Provisioner) failed(err error) {
	host := ProvisionHostUnexpected
	if ne := net.Error(nil); errors.As(err, &ne) {
		host = ProvisionHostUnreachable
	}
	now := time.Now()
	if p.o.Now != nil {
		now = p.o.Now()
	}
	states := make(map[string]StreamProvision, len(p.o.Streams))
	for _, c := range p.o.Streams {
		states[c.Stream] = StreamProvision{State: host, Detail: err.Error()}
		if _, problem := p.desired(c, now); problem != nil {
			states[c.Stream] = StreamProvision{State: tokenProblem(problem), Detail: problem.Error()}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Healthy = false
	p.stats.LastError = err.Error()
	p.stats.Streams = states
}
