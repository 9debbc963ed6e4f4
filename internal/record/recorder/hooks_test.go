package recorder_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// Hooks see every commit and every compaction run, from two registrations.
func TestHooksSeeCommitsAndCompactions(t *testing.T) {
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	cfg := testConfig(t, host.URL(), []string{"spin30"})
	cfg.Compaction.OpenHours = true
	rec, err := recorder.Open(wire.Recorder(cfg, quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var committed [2]int
	var runs []compactor.Result
	for i := range 2 {
		err := rec.AddHooks(recorder.Hooks{
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
		if err != nil {
			t.Fatal(err)
		}
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
	if err := rec.AddHooks(recorder.Hooks{}); err == nil {
		t.Error("AddHooks after Run succeeded, want an error")
	}
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
