package relay

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/relaytest"
	"github.com/practable/lablog/internal/testing/testkit"
)

// awaitStates polls p's per-stream states (they change with no event a
// test could wait on) until they are want, for at most wait.
func awaitStates(t *testing.T, p *Provisioner, want map[string]string) {
	t.Helper()
	var got map[string]string
	if !testkit.Poll(wait, func() bool {
		got = map[string]string{}
		for s, sp := range p.Stats().Streams {
			got[s] = sp.State
			if sp.State != ProvisionRulePosted && sp.State != ProvisionWaiting && sp.Detail == "" {
				t.Fatalf("%s: state %s without a detail", s, sp.State)
			}
		}
		if len(got) != len(want) {
			return false
		}
		for s, st := range want {
			if got[s] != st {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("states %v, want %v", got, want)
	}
}

// Each stream's provisioning state says why it has no rule: the host
// unreachable, answering as something else, or its token expired.
func TestProvisionStatePerStream(t *testing.T) {
	r := newRelay(t)
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		return "http://" + ln.Addr().String()
	}
	var asked atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		_, _ = w.Write([]byte("<html>a router</html>"))
	}))
	t.Cleanup(other.Close)
	host, err := relaytest.NewHost(relaytest.HostOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })

	for _, tc := range []struct {
		name string
		base string
		want map[string]string
	}{
		{"rules posted, expired token", host.URL(), map[string]string{"spin30": ProvisionRulePosted, "spin31": ProvisionTokenExpired}},
		{"host unreachable", closed(), map[string]string{"spin30": ProvisionHostUnreachable, "spin31": ProvisionTokenExpired}},
		{"host answers unexpectedly", other.URL, map[string]string{"spin30": ProvisionHostUnexpected, "spin31": ProvisionTokenExpired}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, err := NewHostAPI(tc.base, nil)
			if err != nil {
				t.Fatal(err)
			}
			lb := &testkit.LogBuffer{}
			o := ProvisionOptions{API: api, Interval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(lb, nil))}
			for s, life := range map[string]time.Duration{"spin30": 48 * time.Hour, "spin31": 30 * time.Minute} {
				topic := LogTopic(s)
				o.Streams = append(o.Streams, Credentials{Stream: s, Access: r.AccessURL(topic), Token: mint(t, r.URL(), topic, life, ScopeRead)})
			}
			p := NewProvisioner(o)
			if st := p.Stats().Streams; st["spin30"].State != ProvisionWaiting {
				t.Fatalf("before Run: %v", st)
			}
			c, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = p.Run(c) }()
			t.Cleanup(func() { cancel(); <-done })
			awaitStates(t, p, tc.want)
			if tc.base == other.URL {
				// Asked again and again, it warns once.
				testkit.Eventually(t, wait, "five answers from the router", func() bool { return asked.Load() >= 5 })
				if n := strings.Count(lb.String(), "level=WARN msg=\"the relay host answers unexpectedly"); n != 1 {
					t.Fatalf("%d warnings after %d answers:\n%s", n, asked.Load(), lb.String())
				}
			}
		})
	}
}
