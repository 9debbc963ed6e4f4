package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/relaytest"
	"github.com/practable/lablog/internal/testing/testkit"
)

// provisioned runs a Provisioner for streams on h until the test ends.
type provisioned struct {
	*Provisioner
	log  *testkit.LogBuffer
	dir  string
	stop func()
}

func provision(t *testing.T, h *relaytest.Host, r *relaytest.Relay, interval time.Duration, streams ...string) *provisioned {
	t.Helper()
	dir := t.TempDir()
	api, err := NewHostAPI(h.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lb := &testkit.LogBuffer{}
	o := ProvisionOptions{API: api, Interval: interval, Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, s := range streams {
		topic := LogTopic(s)
		if err := WriteTokenFiles(dir, s, r.AccessURL(topic), mint(t, r.URL(), topic, 48*time.Hour, ScopeRead)); err != nil {
			t.Fatal(err)
		}
		o.Streams = append(o.Streams, Credentials{Stream: s, AccessFile: AccessFile(dir, s), TokenFile: TokenFile(dir, s)})
	}
	p := NewProvisioner(o)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(c) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Error("Run did not return within 2s of cancel")
		}
	}
	var once sync.Once
	pr := &provisioned{Provisioner: p, log: lb, dir: dir, stop: func() { once.Do(stop) }}
	t.Cleanup(pr.stop)
	return pr
}

// ruleFor reports whether rules hold stream's current rule from dir.
func ruleFor(rules map[string]relaytest.Rule, dir, stream string) bool {
	l, err := Credentials{AccessFile: AccessFile(dir, stream), TokenFile: TokenFile(dir, stream)}.Load(time.Now())
	r, ok := rules[stream]
	return err == nil && ok && r.Stream == stream && r.Destination == l.Access && r.Token == l.Token
}

func allRules(dir string, streams ...string) func(map[string]relaytest.Rule) bool {
	return func(rules map[string]relaytest.Rule) bool {
		for _, s := range streams {
			if !ruleFor(rules, dir, s) {
				return false
			}
		}
		return true
	}
}

func noTokensLogged(t *testing.T, p *provisioned, streams ...string) {
	t.Helper()
	log := p.log.String()
	for _, s := range streams {
		l, _ := Credentials{AccessFile: AccessFile(p.dir, s), TokenFile: TokenFile(p.dir, s)}.Load(time.Now())
		if l.Token != "" && strings.Contains(log, l.Token) {
			t.Fatalf("the log holds %s's token", s)
		}
	}
	if strings.Contains(log, string(testSecret)) {
		t.Fatal("the log holds the secret")
	}
}

// The provisioner waits for the host instead of sleeping, then posts one
// rule per stream, and the host's upstreams come up with them.
func TestProvisionerWaitsForHostThenPostsRules(t *testing.T) {
	r := newRelay(t)
	h, _ := newHost(t, relaytest.HostOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	h.Stop()
	streams := []string{"spin30", "spin31", "spin32"}
	p := provision(t, h, r, 50*time.Millisecond, streams...)
	testkit.Eventually(t, wait, "a healthcheck failure noticed", func() bool { return p.Stats().LastError != "" })
	if st := p.Stats(); st.Healthy || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("stats while the host is down: %+v", st)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitRules(ctx(t), allRules(p.dir, streams...)); err != nil {
		t.Fatalf("rules %v", h.Rules())
	}
	if err := h.WaitUpstreams(ctx(t), 3); err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if err := r.WaitClients(ctx(t), LogTopic(s), 1); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(p.log.String(), "waiting for the relay host") || !strings.Contains(p.log.String(), "rule missing: posting it") {
		t.Fatalf("log:\n%s", p.log)
	}
	// The host may apply the last rule a moment before its reply arrives.
	if !testkit.Poll(wait, func() bool { return !p.Stats().LastSync.IsZero() }) {
		t.Fatalf("no complete check: %+v", p.Stats())
	}
	p.stop()
	if st := p.Stats(); st.Posts != 3 || st.Rules != 3 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
	noTokensLogged(t, p, streams...)
}

func TestProvisionerRepostsAfterHostRestartAndRenewal(t *testing.T) {
	r := newRelay(t)
	h, _ := newHost(t, relaytest.HostOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	streams := []string{"spin30", "spin31"}
	p := provision(t, h, r, 50*time.Millisecond, streams...)
	if err := h.WaitRules(ctx(t), allRules(p.dir, streams...)); err != nil {
		t.Fatal(err)
	}
	if err := h.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitRules(ctx(t), allRules(p.dir, streams...)); err != nil {
		t.Fatalf("after restart: %v", h.Rules())
	}
	// A renewed token file replaces the rule.
	tok := mint(t, r.URL(), "spin31-log", 96*time.Hour, ScopeRead)
	if err := WriteTokenFiles(p.dir, "spin31", r.AccessURL("spin31-log"), tok); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitRules(ctx(t), func(rs map[string]relaytest.Rule) bool { return rs["spin31"].Token == tok }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.log.String(), "rule differs: replacing it") {
		t.Fatalf("log:\n%s", p.log)
	}
	noTokensLogged(t, p, streams...)
}

// A token that cannot work gets no rule (the host would retry it forever);
// another rule for a provisioned stream is deleted; others are left alone.
func TestProvisionerRemovesUselessAndDuplicateRules(t *testing.T) {
	r := newRelay(t)
	h, api := newHost(t, relaytest.HostOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	foreign := Rule{ID: "cam", Stream: "video0", Destination: "ws://127.0.0.1:1/v"}
	dup := Rule{ID: "old-script-30", Stream: "spin30", Destination: r.AccessURL("spin30-log"), Token: mint(t, r.URL(), "spin30-log", time.Hour+time.Minute, ScopeRead)}
	for _, rule := range []Rule{foreign, dup} {
		if err := api.Put(ctx(t), rule); err != nil {
			t.Fatal(err)
		}
	}
	p := provision(t, h, r, 50*time.Millisecond, "spin30", "spin31")
	if err := h.WaitRules(ctx(t), func(rs map[string]relaytest.Rule) bool {
		_, stale := rs["old-script-30"]
		return !stale && rs["cam"].Stream == "video0" && allRules(p.dir, "spin30", "spin31")(rs)
	}); err != nil {
		t.Fatalf("rules %+v", h.Rules())
	}
	expired := mint(t, r.URL(), "spin31-log", 30*time.Minute, ScopeRead)
	if err := WriteTokenFiles(p.dir, "spin31", r.AccessURL("spin31-log"), expired); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitRules(ctx(t), func(rs map[string]relaytest.Rule) bool { _, ok := rs["spin31"]; return !ok }); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("no relay host rule: token expired at %s", time.Now().Add(-30*time.Minute).UTC().Format(time.DateOnly))
	if log := p.log.String(); strings.Count(log, want) != 1 || !strings.Contains(log, "deleting another rule") {
		t.Fatalf("want one %q and a duplicate warning in:\n%s", want, log)
	}
	if !testkit.Poll(wait, func() bool { st := p.Stats(); return st.Deletes == 2 && st.Rules == 1 }) {
		t.Fatalf("stats %+v, want 2 deletes and 1 rule", p.Stats())
	}
	noTokensLogged(t, p, "spin30", "spin31")
	if strings.Contains(p.log.String(), dup.Token) {
		t.Fatal("the log holds the deleted rule's token")
	}
}
