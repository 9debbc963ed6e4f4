package relay

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/testkit"
)

// brokenAPI is a relay host whose healthcheck answers ok but whose rules API
// fails: with fail. As the provisioner's transport, it notes when each API
// request was made (the transport's own retry of a reset request is part of
// one attempt).
type brokenAPI struct {
	mu    sync.Mutex
	calls []time.Time
}

func (b *brokenAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/healthcheck" {
		b.mu.Lock()
		b.calls = append(b.calls, time.Now())
		b.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (b *brokenAPI) serve(t *testing.T, fail func(http.ResponseWriter)) *HostAPI {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthcheck" {
			_, _ = w.Write([]byte("\"ok\"\n"))
			return
		}
		fail(w)
	}))
	t.Cleanup(srv.Close)
	api, err := NewHostAPI(srv.URL, &http.Client{Transport: b, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// reset drops the connection at once (RST): the API refuses the request.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// A host whose healthcheck passes while its rules API fails (a 500, or the
// connection dropped) is asked at most once per Interval, with backoff, and
// the repeated failure is logged a bounded number of times: no hot loop
// filling the journal.
func TestProvisionerPausesWhenRulesAPIFails(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		window   = 1500 * time.Millisecond
	)
	for _, tc := range []struct {
		name string
		fail func(http.ResponseWriter)
	}{
		{"500", func(w http.ResponseWriter) { http.Error(w, "boom", http.StatusInternalServerError) }},
		{"connection dropped (RST)", reset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &brokenAPI{}
			api := b.serve(t, tc.fail)
			lb := &testkit.LogBuffer{}
			p := NewProvisioner(ProvisionOptions{API: api, Interval: interval, Logger: slog.New(slog.NewTextHandler(lb, nil)),
				Streams: []Credentials{{Stream: "spin30", Access: testBase + "/session/spin30-log", Token: "x"}}})
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			if err := p.Run(ctx); err != nil {
				t.Fatal(err)
			}
			b.mu.Lock()
			calls := b.calls
			b.mu.Unlock()
			lines := strings.Count(lb.String(), "\n")
			t.Logf("%s: %d API requests, %d log lines in %v (Interval %v)", tc.name, len(calls), lines, window, interval)
			if len(calls) < 2 {
				t.Fatalf("%d API requests in %v: not retried", len(calls), window)
			}
			for i := 1; i < len(calls); i++ {
				if gap := calls[i].Sub(calls[i-1]); gap < interval {
					t.Fatalf("API request %d came %v after the one before, want at least Interval %v (%d requests in %v)",
						i, gap, interval, len(calls), window)
				}
			}
			// One line saying the host is up, one for the failure: the same
			// failure again says nothing new until RetryLogEvery.
			if lines > 3 {
				t.Fatalf("%d log lines for %d identical failures:\n%.2000s", lines, len(calls), lb.String())
			}
			if st := p.Stats(); st.Healthy || st.LastError == "" {
				t.Fatalf("stats %+v: want unhealthy with the error", st)
			}
		})
	}
}
