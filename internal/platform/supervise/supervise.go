// Package supervise runs a program's long-running components: started in
// order, stopped in reverse, each stage waited for before the one before it
// is stopped. A component is anything with Run(ctx) error that returns once
// ctx ends and everything it started has stopped.
//
// The order is the durability contract of a pipeline: what feeds the
// buffer's writer is started last and stopped first, so the writer drains
// only once nothing can enqueue any more, and what reads the committed
// records stops after it.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/practable/lablog/internal/platform/logkey"
)

// Runner is a long-running component.
type Runner interface {
	Run(ctx context.Context) error
}

// Func makes a function a Runner.
type Func func(ctx context.Context) error

// Run calls f.
func (f Func) Run(ctx context.Context) error { return f(ctx) }

// Stage is components started together and stopped together (the
// sources of every stream, say). A nil Runner is skipped, so an optional
// component can be listed as is.
type Stage struct {
	Name    string
	Runners []Runner
}

// Run starts stages in order (launches their goroutines: a component must
// take work as soon as it is made, as the writer's queue does) and runs them
// until ctx ends; then it stops
// them in reverse order: it cancels the last stage, waits for each of its
// components to return, then does the same with the stage before it.
//
// A component that returns early, with or without an error, does not stop
// the others: on a recorder, a status page that fails must not stop the
// recording. Its error is logged when it happens (log may be nil:
// slog.Default()) and Run returns every such error, joined.
func Run(ctx context.Context, log *slog.Logger, stages ...Stage) error {
	if log == nil {
		log = slog.Default()
	}
	type running struct {
		cancel context.CancelFunc
		wg     sync.WaitGroup
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	started := make([]*running, len(stages))
	for i, st := range stages {
		// Each stage has a context of its own, not derived from ctx: the
		// stages must end one by one, in reverse, not all at once.
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &running{cancel: cancel}
		started[i] = r
		for _, x := range st.Runners {
			if x == nil {
				continue
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				if err := x.Run(sctx); err != nil {
					log.Error(st.Name+" stopped", logkey.Err, err)
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", st.Name, err))
					mu.Unlock()
				}
			}()
		}
	}
	<-ctx.Done()
	for i := len(started) - 1; i >= 0; i-- {
		started[i].cancel()
		started[i].wg.Wait()
	}
	return errors.Join(errs...)
}
