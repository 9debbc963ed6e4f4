package source

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/sim/labsim"
)

// wait bounds every wait of a test; nothing is expected to take this long.
const wait = 10 * time.Second

// testSink records what a source enqueues; while full it refuses, and says so.
type testSink struct {
	records chan frame.Record
	refused chan struct{}
	full    atomic.Bool
}

func newSink() *testSink {
	return &testSink{records: make(chan frame.Record, 10000), refused: make(chan struct{}, 10000)}
}

func (s *testSink) Enqueue(r frame.Record) bool {
	if s.full.Load() {
		s.refused <- struct{}{}
		return false
	}
	select {
	case s.records <- r:
		return true
	default:
		return false
	}
}

// next returns the next record, which must be of kind k.
func (s *testSink) next(t *testing.T, k frame.Kind) frame.Record {
	t.Helper()
	select {
	case r := <-s.records:
		if r.Kind != k {
			t.Fatalf("got %v record %q, want %v", r.Kind, r.Data, k)
		}
		return r
	case <-time.After(wait):
		t.Fatalf("no %v record within %v", k, wait)
	}
	return frame.Record{}
}

// until skips records until one of kind k, and returns it.
func (s *testSink) until(t *testing.T, k frame.Kind) frame.Record {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case r := <-s.records:
			if r.Kind == k {
				return r
			}
		case <-timeout:
			t.Fatalf("no %v record within %v", k, wait)
		}
	}
}

// none checks that no record arrives during d.
func (s *testSink) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.records:
		t.Fatalf("unexpected %v record %q", r.Kind, r.Data)
	case <-time.After(d):
	}
}

// logSink is a slog handler that passes lines to a channel, so tests can
// wait for what the source logs (dial failures) instead of sleeping.
type logSink struct {
	msgs  chan string
	attrs string
}

func newLog() (*slog.Logger, *logSink) {
	l := &logSink{msgs: make(chan string, 1000)}
	return slog.New(l), l
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	for _, a := range as {
		c.attrs += " " + a.String()
	}
	return &c
}

func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message + l.attrs)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	select {
	case l.msgs <- b.String():
	default:
	}
	return nil
}

// await waits for a log line containing s.
func (l *logSink) await(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m := <-l.msgs:
			if strings.Contains(m, s) {
				return m
			}
		case <-timeout:
			t.Fatalf("no log line with %q within %v", s, wait)
		}
	}
}

func newHost(t *testing.T) *labsim.Host {
	t.Helper()
	h, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// fastConfig suits loopback tests: quick reconnects, normal timeouts.
func fastConfig(stream, url string) Config {
	return Config{
		Stream:     stream,
		URL:        url,
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
}

// running is a source whose Run goroutine the test controls.
type running struct {
	*Source
	cancel context.CancelFunc
	done   chan error
}

// start runs a source until the test ends (or stop is called).
func start(t *testing.T, cfg Config, sink Sink, log *slog.Logger) *running {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Logger = log
	r := &running{Source: New(cfg, sink), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- r.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and checks that it returns promptly; it may run twice.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
}

// recv receives from ch, failing the test after the usual wait.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("nothing received within %v", wait)
	}
	var zero T
	return zero
}
