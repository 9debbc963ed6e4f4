package testkit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/buffer"
)

// fakeTB records what a helper reports instead of failing the real test;
// Fatalf ends the calling goroutine, as testing.T's does.
type fakeTB struct {
	testing.TB // methods the helpers do not call: nil, they would panic
	mu         sync.Mutex
	fatals     []string
	errors     []string
	cleanups   []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// run calls body as a test would, in its own goroutine, then the cleanups
// in reverse order; it reports whether body returned (no Fatalf).
func (f *fakeTB) run(body func(testing.TB)) (returned bool) {
	done := make(chan bool)
	go func() {
		ok := false
		defer func() { done <- ok }()
		body(f)
		ok = true
	}()
	returned = <-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return returned
}

func TestPollHoldsOnceCondHolds(t *testing.T) {
	var n atomic.Int32
	if !Poll(5*time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("Poll gave up on a condition that came to hold")
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("cond called %d times, want 3 (Poll stops at the first true)", got)
	}
}

func TestPollGivesUpAfterLimit(t *testing.T) {
	start := time.Now()
	if Poll(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never holds")
	}
	if took := time.Since(start); took < 50*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Poll gave up after %v, want the 50ms limit", took)
	}
}

func TestPollEveryKeepsItsPeriod(t *testing.T) {
	var calls []time.Time
	PollEvery(250*time.Millisecond, 100*time.Millisecond, func() bool { calls = append(calls, time.Now()); return false })
	if len(calls) < 2 || len(calls) > 4 {
		t.Fatalf("%d checks in 250ms every 100ms, want 2 to 4", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < 100*time.Millisecond {
			t.Fatalf("checks %v apart, want at least the 100ms period", gap)
		}
	}
}

func TestEventuallyPassesWhenCondComesToHold(t *testing.T) {
	f := &fakeTB{}
	ready := time.Now().Add(30 * time.Millisecond)
	if !f.run(func(tb testing.TB) {
		Eventually(tb, 5*time.Second, "the clock", func() bool { return time.Now().After(ready) })
	}) || len(f.fatals) > 0 {
		t.Fatalf("Eventually failed a condition that came to hold: %v", f.fatals)
	}
}

func TestEventuallyFailsTheTestOnTimeout(t *testing.T) {
	f := &fakeTB{}
	reached := false
	f.run(func(tb testing.TB) {
		Eventually(tb, 30*time.Millisecond, "godot", func() bool { return false })
		reached = true
	})
	if reached {
		t.Fatal("the test went on after Eventually timed out")
	}
	if want := "timed out after 30ms waiting for godot"; len(f.fatals) != 1 || f.fatals[0] != want {
		t.Fatalf("fatals = %q, want [%q]", f.fatals, want)
	}
}

func TestLogBufferTakesConcurrentSlogOutput(t *testing.T) {
	var b LogBuffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				log.Info("line", "writer", w, "i", i)
				_ = b.String() // read while others write: -race checks the lock
			}
		})
	}
	wg.Wait()
	out := b.String()
	if n := strings.Count(out, "msg=line"); n != 200 {
		t.Fatalf("%d lines, want 200:\n%s", n, out)
	}
	for w := range 4 {
		if !strings.Contains(out, fmt.Sprintf("writer=%d i=49", w)) {
			t.Fatalf("writer %d's last line missing:\n%s", w, out)
		}
	}
}

// The buffer's file lock is held while it is open: opening it again with a
// short lock timeout tells whether the cleanup closed it.
func reopenable(path string) error {
	db, err := buffer.Open(path, buffer.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	return db.Close()
}

func TestOpenBufferClosesAtCleanup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	f := &fakeTB{}
	f.run(func(tb testing.TB) {
		db := OpenBuffer(tb, path, buffer.Options{})
		if db.Path() != path {
			t.Errorf("path = %s, want %s", db.Path(), path)
		}
		if err := reopenable(path); !errors.Is(err, buffer.ErrLocked) {
			t.Errorf("reopen while open: err = %v, want ErrLocked", err)
		}
	})
	if len(f.fatals)+len(f.errors) > 0 {
		t.Fatalf("fatals %q, errors %q", f.fatals, f.errors)
	}
	if err := reopenable(path); err != nil {
		t.Fatalf("the buffer is still open after the cleanup: %v", err)
	}
}

func TestOpenBufferClosedByTheTestToo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	f := &fakeTB{}
	f.run(func(tb testing.TB) {
		if err := OpenBuffer(tb, path, buffer.Options{}).Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if len(f.fatals)+len(f.errors) > 0 {
		t.Fatalf("closing twice reported: fatals %q, errors %q", f.fatals, f.errors)
	}
}

func TestOpenBufferFailsTheTestWhenItCannotOpen(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fakeTB{}
	if f.run(func(tb testing.TB) { OpenBuffer(tb, filepath.Join(notADir, "buffer.db"), buffer.Options{}) }) {
		t.Fatal("OpenBuffer returned for a path that cannot hold a file")
	}
	if len(f.fatals) != 1 || !strings.HasPrefix(f.fatals[0], "open buffer: ") {
		t.Fatalf("fatals = %q, want one open buffer error", f.fatals)
	}
	if len(f.cleanups) != 0 {
		t.Fatalf("%d cleanups registered for a buffer that never opened", len(f.cleanups))
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	c := NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want %v", got, t0)
	}
	if got := c.Advance(90 * time.Second); !got.Equal(t0.Add(90*time.Second)) || !c.Now().Equal(got) {
		t.Fatalf("Advance returned %v, Now %v, want %v", got, c.Now(), t0.Add(90*time.Second))
	}
	c.Set(t0.Add(-time.Hour))
	if got := c.Now(); !got.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("after Set back an hour: Now = %v", got)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(t0.Add(-time.Hour + 400*time.Millisecond)) {
		t.Fatalf("after 400 concurrent advances of 1ms: %v", got)
	}
}
