// Package testkit holds the helpers every package's tests share: waiting
// for a condition with a time limit, a log buffer safe to read while a
// daemon writes it, a real buffer that closes itself when the test ends,
// a settable clock, and real buffers with known records, damaged on
// purpose, with a reader of what reached the archive. Only tests import it.
package testkit

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/buffer"
)

// pollEvery is short so a test waits little past the moment its condition
// holds, and long enough not to steal a core from the code under test.
const pollEvery = 10 * time.Millisecond

// Poll calls cond until it holds (true) or limit passes (false). It never
// fails a test, so goroutines and helpers that must not call t.Fatal use
// it. For state that has an event to wait on (a channel, a
// waitfor.Signal), wait on the event instead.
func Poll(limit time.Duration, cond func() bool) bool {
	return PollEvery(limit, pollEvery, cond)
}

// PollEvery is Poll with its own period, for conditions that are costly to
// check (a command run over ssh in an emulated machine).
func PollEvery(limit, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
}

// Eventually is Poll that fails the test, naming what it waited for, when
// limit passes first.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(limit, cond) {
		t.Fatalf("timed out after %v waiting for %s", limit, what)
	}
}

// LogBuffer collects log output (for example of a slog handler) and is
// safe to read while other goroutines write it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// OpenBuffer opens the bbolt buffer at path, failing the test if it does
// not open, and closes it when the test ends. The test may close it itself
// first (to reopen it, or to hand the file to a process): closing twice is
// safe.
func OpenBuffer(t testing.TB, path string, opts buffer.Options) *buffer.DB {
	t.Helper()
	db, err := buffer.Open(path, opts)
	if err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close buffer: %v", err)
		}
	})
	return db
}

// Clock is a settable clock for code that takes a Now func; safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock is a clock standing at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set puts the clock at t (backwards too, as an NTP step may).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Start runs r until the returned stop is called, or the test ends: stop
// ends Run's context and waits for it to return (a minute at most), failing
// the test if Run returned an error. Calling stop again does nothing.
func Start(t testing.TB, r interface{ Run(context.Context) error }) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(time.Minute):
				t.Errorf("Run did not return within a minute of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
