package recorder_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// Hooks see every commit and every compaction run, two sets of them.
func TestHooksSeeCommitsAndCompactions(t *testing.T) {
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	cfg := testConfig(t, host.URL(), []string{"spin30"})
	cfg.Compaction.OpenHours = true
	var mu sync.Mutex
	var committed [2]int
	var runs []compactor.Result
	var hooks []recorder.Hooks
	for i := range 2 {
		hooks = append(hooks, recorder.Hooks{
			OnCommit: func(n int, took time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				committed[i] += n
			},
			OnCompaction: func(r compactor.Result) {
				if i == 0 {
					mu.Lock()
					defer mu.Unlock()
					runs = append(runs, r)
				}
			},
		})
	}
	o := wire.Recorder(cfg, quietLogger())
	o.Extras = func(*recorder.Recorder) (recorder.Extras, error) { return recorder.Extras{Hooks: hooks}, nil }
	rec, err := recorder.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(runCtx) }()
	if err := host.WaitClients(ctx, "spin30", 1); err != nil {
		t.Fatal(err)
	}
	lab := labsim.NewLab(host, labsim.LabOptions{Streams: []string{"spin30"}, Seed: 1})
	if err := lab.RunN(ctx, 50); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "every frame committed", func() bool {
		// Frames plus the connected record.
		return rec.Writer().Stats().Committed == host.DeliveredCount("spin30")+1
	})
	rec.Compactor().Trigger()
	testkit.Eventually(t, 10*time.Second, "a compaction that archived something", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range runs {
			if r.Files > 0 {
				return true
			}
		}
		return false
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := rec.Writer().Stats().Committed
	mu.Lock()
	defer mu.Unlock()
	if int64(committed[0]) != want || int64(committed[1]) != want {
		t.Errorf("hooks saw %v records committed, writer says %d", committed, want)
	}
}

// An Extras that fails fails Open and releases the buffer.
func TestExtrasErrorFailsOpen(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", []string{"spin30"})
	o := wire.Recorder(cfg, quietLogger())
	bad := errors.New("no listener")
	o.Extras = func(r *recorder.Recorder) (recorder.Extras, error) {
		if r.Buffer() == nil || r.Writer() == nil {
			t.Error("Extras called before the pipeline was assembled")
		}
		return recorder.Extras{}, bad
	}
	if _, err := recorder.Open(o); !errors.Is(err, bad) {
		t.Fatalf("Open: %v, want the Extras error", err)
	}
	rec, err := recorder.Open(wire.Recorder(cfg, quietLogger()))
	if err != nil {
		t.Fatalf("open after a failed Open: %v (the buffer was not released)", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}
