// Package waitfor lets goroutines wait, without polling, for a condition on
// state guarded by a mutex (the test doubles use it for "wait until N
// clients joined" and the like), and pause a retry loop (Sleep).
package waitfor

import (
	"context"
	"sync"
	"time"
)

// Signal wakes waiters when the guarded state changes. Its zero value is
// ready to use; every method must be called with the state's mutex held,
// except Await, which takes the mutex itself.
type Signal struct {
	ch chan struct{}
}

func (s *Signal) chanLocked() chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes every waiter so it re-checks its condition; mu must be held.
func (s *Signal) Notify() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Await returns once cond, evaluated with mu held, is true, or ctx ends.
func (s *Signal) Await(ctx context.Context, mu sync.Locker, cond func() bool) error {
	for {
		mu.Lock()
		ok, ch := cond(), s.chanLocked()
		mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Sleep waits d unless ctx ends first, and reports whether to go on: false
// once ctx has ended. It is the pause of every retry loop, so a stop is
// never held up by one.
func Sleep(ctx context.Context, d time.Duration) bool {
	goOn, _ := SleepUnless(ctx, d, nil)
	return goOn
}

// SleepUnless is Sleep that also ends when wake is ready (closed, or
// sending), and then says woken.
func SleepUnless(ctx context.Context, d time.Duration, wake <-chan struct{}) (goOn, woken bool) {
	if d <= 0 {
		return ctx.Err() == nil, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-t.C:
		return true, false
	case <-wake:
		return ctx.Err() == nil, true
	}
}

// SleepErr is Sleep for loops that return ctx's error when it ends.
func SleepErr(ctx context.Context, d time.Duration) error {
	if !Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}
