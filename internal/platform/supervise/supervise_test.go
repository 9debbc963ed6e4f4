package supervise

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder notes the events of the components it makes.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// component notes its start, and when its context ends it notes "stop"
// after a moment's work, so that a stage stopped before the one after it
// has finished shows up out of order.
func (e *events) component(name string, started *sync.WaitGroup) Runner {
	started.Add(1)
	return Func(func(ctx context.Context) error {
		e.add("start " + name)
		started.Done()
		<-ctx.Done()
		time.Sleep(5 * time.Millisecond) // work to finish: a later stop must wait for it
		e.add("stop " + name)
		return nil
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestStopsInReverseWaitingForEach(t *testing.T) {
	var e events
	var started sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stages := []Stage{
		{Name: "writer", Runners: []Runner{e.component("writer", &started)}},
		{Name: "sources", Runners: []Runner{e.component("a", &started), e.component("b", &started)}},
		{Name: "ingress", Runners: []Runner{e.component("http", &started)}},
	}
	go func() { done <- Run(ctx, quiet(), stages...) }()
	started.Wait()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of the cancel")
	}
	got := e.list()
	pos := func(s string) int {
		i := slices.Index(got, s)
		if i < 0 {
			t.Fatalf("no %q in %v", s, got)
		}
		return i
	}
	for _, c := range []string{"writer", "a", "b", "http"} {
		if pos("start "+c) > pos("stop http") {
			t.Errorf("%s started after the stop began: %v", c, got)
		}
	}
	// Stopped: the ingress has returned before a source stops, and both
	// sources before the writer stops.
	if !(pos("stop http") < pos("stop a") && pos("stop http") < pos("stop b") &&
		pos("stop a") < pos("stop writer") && pos("stop b") < pos("stop writer")) {
		t.Errorf("stop order %v", got)
	}
}

// A component that fails early is reported and does not stop the others;
// Run still returns only when ctx ends.
func TestFailureStopsNothingElse(t *testing.T) {
	var e events
	var started sync.WaitGroup
	failed := make(chan struct{})
	boom := Func(func(context.Context) error { defer close(failed); return errors.New("boom") })
	var logs strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, log, Stage{Name: "ops", Runners: []Runner{boom, nil}},
			Stage{Name: "recorder", Runners: []Runner{e.component("rec", &started)}})
	}()
	started.Wait()
	<-failed
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before its context ended", err)
	default:
	}
	cancel()
	err := <-done
	if err == nil || err.Error() != "ops: boom" {
		t.Errorf("Run = %v, want ops: boom", err)
	}
	if got := e.list(); !slices.Equal(got, []string{"start rec", "stop rec"}) {
		t.Errorf("events %v", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), `msg="ops stopped" err=boom`) {
		t.Errorf("log %q lacks the failure", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
