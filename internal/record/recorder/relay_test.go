package recorder_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/record/source"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/relaytest"
	"github.com/practable/lablog/internal/testing/testkit"
)

var relaySecret = []byte("e2e-shared-secret-never-logged")

// relayLab is the world around lablog: a relay double, the lab's UIs
// publishing through it, and a folder of lablog's read-only tokens.
type relayLab struct {
	relay  *relaytest.Relay
	uis    *relaytest.UIs
	names  []string
	tokens string
	log    *testkit.LogBuffer
}

func newRelayLab(t *testing.T, n int) *relayLab {
	t.Helper()
	r, err := relaytest.NewRelay(relaytest.RelayOptions{Secret: relaySecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	l := &relayLab{relay: r, uis: relaytest.NewUIs(r, relaySecret), tokens: t.TempDir(), log: &testkit.LogBuffer{}}
	t.Cleanup(l.uis.Close)
	for i := range n {
		name := fmt.Sprintf("spin%d", 30+i)
		l.names = append(l.names, name)
		l.writeToken(t, name, relay.LogTopic(name), 365*24*time.Hour)
	}
	return l
}

// writeToken mints a read-only token for topic valid from an hour ago for
// lifetime, and files it as stream's.
func (l *relayLab) writeToken(t *testing.T, stream, topic string, lifetime time.Duration) {
	t.Helper()
	iat := time.Now().Add(-time.Hour)
	tok, err := relay.Mint(relaySecret, relay.Claims{Topic: topic, Scopes: []string{relay.ScopeRead},
		BookingID: "lablog-" + topic, Audience: l.relay.URL(), IssuedAt: iat, NotBefore: iat, ExpiresAt: iat.Add(lifetime)})
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.WriteTokenFiles(l.tokens, stream, l.relay.AccessURL(relay.LogTopic(stream)), tok); err != nil {
		t.Fatal(err)
	}
}

func (l *relayLab) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecretsLogged checks that neither the secret nor a token reached the log.
func (l *relayLab) noSecretsLogged(t *testing.T) {
	t.Helper()
	log := l.log.String()
	if strings.Contains(log, string(relaySecret)) {
		t.Fatal("the log holds the secret")
	}
	for _, n := range l.names {
		tok, err := os.ReadFile(relay.TokenFile(l.tokens, n))
		if err == nil && strings.Contains(log, strings.TrimSpace(string(tok))) {
			t.Fatalf("the log holds %s's token", n)
		}
	}
}

// running is a recorder running until stop.
type running struct {
	*recorder.Recorder
	cfg  config.Config
	stop func()
}

func startRecorder(t *testing.T, cfg config.Config, log *slog.Logger) *running {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rec, err := recorder.Open(wire.Recorder(cfg, log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Error(err)
				}
			case <-time.After(10 * time.Second):
				t.Error("recorder did not stop within 10 s")
			}
		})
	}
	t.Cleanup(stop)
	return &running{Recorder: rec, cfg: cfg, stop: stop}
}

func (r *running) received() int64 {
	var n int64
	for _, s := range r.Sources() {
		n += s.Frames
	}
	return n
}

func (r *running) allConnected(want bool) bool {
	for _, s := range r.Sources() {
		if s.Connected != want {
			return false
		}
	}
	return true
}

// publish runs the lab's UIs for n messages per stream through the relay.
func (l *relayLab) publish(t *testing.T, n int, seed uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.uis.Connect(ctx, l.names...); err != nil {
		t.Fatal(err)
	}
	lab := labsim.NewLabOn(l.uis, labsim.LabOptions{Streams: l.names, Rate: 2000, JoinProb: 0.2, BadFrames: true, Seed: seed})
	if err := lab.RunN(ctx, n); err != nil {
		t.Fatal(err)
	}
	// Every frame the UIs wrote has reached the relay, and left it.
	if err := l.relay.WaitReceived(ctx, l.uis.Sent()); err != nil {
		t.Fatal(err)
	}
	if err := l.relay.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkArchive compares each stream's archived frames with what was
// delivered to lablog, byte for byte and in order, and returns the
// connection events of each stream.
func checkArchive(t *testing.T, cfg config.Config, names []string, delivered func(string) [][]byte) map[string][]string {
	t.Helper()
	flush(t, cfg)
	archived := readArchive(t, cfg.Archive.Path)
	events := map[string][]string{}
	total := 0
	for _, n := range names {
		want := delivered(n)
		got := frames(archived[n])
		if len(got) != len(want) || len(want) == 0 {
			i := 0
			for i < min(len(got), len(want)) && bytes.Equal(got[i], want[i]) {
				i++
			}
			var g, w []byte
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			t.Fatalf("%s: %d frames archived, %d delivered; first difference at %d:\n got %.200q\nwant %.200q", n, len(got), len(want), i, g, w)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s frame %d differs:\n got %.120q\nwant %.120q", n, i, got[i], want[i])
			}
		}
		total += len(want)
		for _, r := range archived[n] {
			if r.Kind != archive.KindMessage && r.Kind != "binary" {
				e := r.Kind
				if r.Detail != nil {
					e += ": " + *r.Detail
				}
				events[n] = append(events[n], e)
			}
		}
	}
	t.Logf("%d streams: %d delivered frames, each archived exactly once", len(names), total)
	return events
}

// eventsAround reports whether a stream's events are one restart of its
// peer: connected, disconnected by a read error, connected, and the
// shutdown; the connected URLs without their one-time codes.
func eventsAround(e []string, url func(string) bool) bool {
	if len(e) != 4 || !strings.HasPrefix(e[1], "disconnected: read: ") || e[3] != "disconnected: shutdown" {
		return false
	}
	for _, c := range []string{e[0], e[2]} {
		u, ok := strings.CutPrefix(c, "connected: ")
		if !ok || !url(u) {
			return false
		}
	}
	return true
}

// UIs publish through the relay double to 12 topics and lablog records
// them by the access protocol. The relay is killed and restarted mid-run:
// lablog reconnects within its backoff bound and the gap is in the data.
func TestRelayDirectEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("12 streams through the relay double, twice")
	}
	l := newRelayLab(t, 12)
	cfg := testConfig(t, "ws://127.0.0.1:1", l.names)
	cfg.StreamSpecs = []config.StreamSpec{{Name: "spin30-41", Relay: l.relay.URL()}}
	cfg.Sources.TokensDir = l.tokens
	cfg.Sources.MinBackoff = 50 * time.Millisecond
	cfg.Sources.MaxBackoff = 500 * time.Millisecond
	rec := startRecorder(t, cfg, l.logger())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range l.names {
		if err := l.relay.WaitClients(ctx, relay.LogTopic(n), 1); err != nil {
			t.Fatal(err)
		}
	}
	delivered := func() int64 {
		var d int64
		for _, n := range l.names {
			d += l.relay.DeliveredCount(relay.LogTopic(n))
		}
		return d
	}
	l.publish(t, 200, 1)
	testkit.Eventually(t, 30*time.Second, "lablog to receive every delivered frame", func() bool { return rec.received() == delivered() })

	// Kill the relay: every stream notices, and retries.
	l.relay.Stop()
	testkit.Eventually(t, 10*time.Second, "every stream to see the relay go", func() bool { return rec.allConnected(false) })
	for _, n := range l.names {
		testkit.Eventually(t, 10*time.Second, "the UI of "+n+" to notice the relay going", func() bool { return !l.uis.Connected(n) })
	}
	if err := l.relay.Start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	for _, n := range l.names {
		if err := l.relay.WaitClients(ctx, relay.LogTopic(n), 1); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(restarted)
	// The next attempt comes within max_backoff, then access and dial.
	if bound := cfg.Sources.MaxBackoff + time.Second; took > bound {
		t.Fatalf("reconnected %v after the relay came back, bound %v", took, bound)
	}
	t.Logf("all 12 streams back %v after the relay restarted (max_backoff %v)", took.Round(time.Millisecond), cfg.Sources.MaxBackoff)

	l.publish(t, 200, 2)
	testkit.Eventually(t, 30*time.Second, "lablog to receive every delivered frame", func() bool { return rec.received() == delivered() })
	sent := l.uis.Sent()
	rec.stop()

	events := checkArchive(t, cfg, l.names, func(n string) [][]byte { return l.relay.Delivered(relay.LogTopic(n)) })
	for _, n := range l.names {
		e := events[n]
		// The hub's own address, not the access endpoint's; no code.
		if !eventsAround(e, func(u string) bool {
			return strings.HasPrefix(u, "ws://127.0.0.1:") && strings.HasSuffix(u, "/session/"+relay.LogTopic(n))
		}) {
			t.Errorf("%s: events %q, want connected, disconnected (the relay's restart), connected, disconnected: shutdown", n, e)
		}
	}
	if st := rec.Sources()[0]; st.Reconnects != 1 || st.TokenState != source.TokenOK {
		t.Errorf("stats %+v", st)
	}
	t.Logf("UIs sent %d frames; the relay delivered %d (fewer: queued messages glued into one frame)", sent, delivered())
	l.noSecretsLogged(t)
}

// The same lab read through a relay host whose rules lablog keeps: the
// host restarts and loses them, and lablog posts them again within 10 s
// (default rules_interval) without a restart of its own.
func TestRelayHostEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("12 streams through the relay host double, with a host restart")
	}
	l := newRelayLab(t, 12)
	host, err := relaytest.NewHost(relaytest.HostOptions{MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	cfg := testConfig(t, host.URL(), l.names)
	cfg.StreamSpecs = []config.StreamSpec{{Name: "spin30-41", RelayHost: host.URL(), TokensDir: l.tokens}}
	cfg.Sources.MinBackoff = 50 * time.Millisecond
	cfg.Sources.MaxBackoff = 500 * time.Millisecond
	if cfg.Sources.RulesInterval != 5*time.Second {
		t.Fatalf("rules_interval default %v", cfg.Sources.RulesInterval)
	}
	rec := startRecorder(t, cfg, l.logger())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready := func() {
		t.Helper()
		if err := host.WaitRules(ctx, func(rs map[string]relaytest.Rule) bool { return len(rs) == 12 }); err != nil {
			t.Fatal(err)
		}
		if err := host.WaitUpstreams(ctx, 12); err != nil {
			t.Fatal(err)
		}
		for _, n := range l.names {
			if err := host.Local().WaitClients(ctx, n, 1); err != nil {
				t.Fatal(err)
			}
			// The relay has let go of the upstreams of a host that restarted.
			if err := l.relay.WaitReaders(ctx, relay.LogTopic(n), 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	ready()
	for id, r := range host.Rules() {
		if id != r.Stream || r.Destination != l.relay.AccessURL(relay.LogTopic(id)) || r.Token == "" {
			t.Fatalf("rule %s: stream %s destination %s", id, r.Stream, r.Destination)
		}
	}
	quiet := func() bool { // everything the relay delivered went through the host to lablog
		var up, fromRelay, local int64
		for _, n := range l.names {
			up += host.UpstreamFrames(n)
			fromRelay += l.relay.DeliveredCount(relay.LogTopic(n))
			local += host.DeliveredCount(n)
		}
		return up == fromRelay && rec.received() == local
	}
	l.publish(t, 200, 3)
	testkit.Eventually(t, 30*time.Second, "frames to pass the host to lablog", quiet)

	if err := host.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := host.WaitRules(ctx, func(rs map[string]relaytest.Rule) bool { return len(rs) == 12 }); err != nil {
		t.Fatal(err)
	}
	took := time.Since(restarted)
	if took > 10*time.Second {
		t.Fatalf("rules re-posted %v after the host restarted, want within 10 s", took)
	}
	t.Logf("12 rules re-posted %v after the relay host restarted (rules_interval 5s)", took.Round(time.Millisecond))
	ready()
	l.publish(t, 200, 4)
	testkit.Eventually(t, 30*time.Second, "frames to pass the host to lablog", quiet)
	rec.stop()
	if st := rec.Provisioning(); len(st) != 1 || st[0].Posts < 24 || st[0].Rules != 12 {
		t.Errorf("provisioning %+v", st)
	}

	events := checkArchive(t, cfg, l.names, host.Delivered)
	for _, n := range l.names {
		e := events[n]
		if !eventsAround(e, func(u string) bool { return u == host.URL()+"/ws/"+n }) {
			t.Errorf("%s: events %q, want connected, disconnected (the host's restart), connected, disconnected: shutdown", n, e)
		}
	}
	l.noSecretsLogged(t)
}

// Expired, wrong-topic and missing tokens stop their streams with clear,
// distinct states and never reach the relay; a renewed token file starts
// its stream again without a restart.
func TestRelayTokenStates(t *testing.T) {
	l := newRelayLab(t, 4) // spin30..spin33
	l.writeToken(t, "spin31", "spin31-log", 30*time.Minute)
	l.writeToken(t, "spin32", "spin33-log", 365*24*time.Hour)
	if err := os.Remove(relay.TokenFile(l.tokens, "spin33")); err != nil {
		t.Fatal(err)
	}
	expired := time.Now().Add(-30 * time.Minute).UTC().Format(time.DateOnly)
	cfg := testConfig(t, "ws://127.0.0.1:1", l.names)
	cfg.StreamSpecs = []config.StreamSpec{{Name: "spin30-33", Relay: l.relay.URL(), TokensDir: l.tokens}}
	cfg.Sources.MinBackoff = 50 * time.Millisecond
	cfg.Sources.MaxBackoff = 200 * time.Millisecond
	cfg.Sources.TokenWarning = 400 * 24 * time.Hour // so the good token warns too
	rec := startRecorder(t, cfg, l.logger())

	want := map[string][2]string{
		"spin30": {source.StateConnected, source.TokenExpiring},
		"spin31": {"token expired at " + expired, source.TokenExpired},
		"spin32": {"token is for topic spin33-log, not spin32-log", source.TokenWrongTopic},
		"spin33": {"no relay token: open " + relay.TokenFile(l.tokens, "spin33") + ": no such file or directory", source.TokenInvalid},
	}
	states := func() map[string][2]string {
		got := map[string][2]string{}
		for _, s := range rec.Sources() {
			st := s.State
			if strings.HasPrefix(st, "token expired at ") {
				st = st[:len("token expired at 2026-12-02")] // the time of day is the mint's
			}
			got[s.Stream] = [2]string{st, s.TokenState}
		}
		return got
	}
	testkit.Eventually(t, 10*time.Second, "the token states", func() bool { return fmt.Sprint(states()) == fmt.Sprint(want) })
	if n := l.relay.Answers(401) + l.relay.Answers(400); n != 0 {
		t.Fatalf("%d unusable tokens were sent to the relay", n)
	}
	if exp, ok := rec.TokenExpiry("spin31"); !ok || exp.UTC().Format(time.DateOnly) != expired {
		t.Fatalf("TokenExpiry(spin31) = %v %v", exp, ok)
	}
	if _, ok := rec.TokenExpiry("nope"); ok {
		t.Fatal("TokenExpiry of an unknown stream")
	}
	log := l.log.String()
	for _, w := range []string{`msg="stream stopped: token expired at ` + expired, "relay token expires soon: renew it", "stream stopped: token is for topic spin33-log"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q", w)
		}
	}

	// Renewed in place: spin31 connects with no restart.
	l.writeToken(t, "spin31", "spin31-log", 365*24*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.relay.WaitClients(ctx, "spin31-log", 1); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "spin31 to connect", func() bool { return states()["spin31"][0] == source.StateConnected })
	rec.stop()
	l.noSecretsLogged(t)
}
