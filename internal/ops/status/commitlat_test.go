package status

import (
	"testing"
	"time"
)

func TestCommitRingPercentiles(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		add  []time.Duration
		want *CommitLatency
	}{
		{"none", nil, nil},
		{"one", []time.Duration{3 * ms}, &CommitLatency{Commits: 1, P50: 3, P99: 3, Max: 3}},
		{"nearest rank", []time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, &CommitLatency{Commits: 4, P50: 2, P99: 4, Max: 4}},
		{"sub-millisecond", []time.Duration{250 * time.Microsecond, 750 * time.Microsecond}, &CommitLatency{Commits: 2, P50: 0.25, P99: 0.75, Max: 0.75}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r commitRing
			for _, d := range c.add {
				r.add(d)
			}
			got := r.summary()
			if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
				t.Fatalf("summary = %+v, want %+v", got, c.want)
			}
		})
	}
}

// The window keeps only the most recent commits: an old slow one ages out.
func TestCommitRingForgetsOldCommits(t *testing.T) {
	var r commitRing
	r.add(time.Second)
	for i := 1; i <= commitWindow; i++ {
		r.add(time.Duration(i) * time.Microsecond)
	}
	got := r.summary()
	if got.Commits != commitWindow || got.Max != float64(commitWindow)/1000 {
		t.Fatalf("summary = %+v, want %d commits, max %v ms", got, commitWindow, float64(commitWindow)/1000)
	}
	// 99% of 4096 is rank 4056 (ceil 4055.04): 4056 µs.
	if got.P99 != 4.056 || got.P50 != 2.048 {
		t.Fatalf("p50 %v p99 %v, want 2.048 and 4.056", got.P50, got.P99)
	}
}

// /api/status carries the recent commit latency under buffer.commit_ms.
func TestSnapshotCommitLatency(t *testing.T) {
	m := New(&fakePipeline{}, Options{ArchiveRoot: t.TempDir(), Logger: quiet()})
	if m.Snapshot().Buffer.CommitMs != nil {
		t.Fatal("commit_ms before any commit, want null")
	}
	m.ObserveCommit(10, 2*time.Millisecond)
	m.ObserveCommit(10, 8*time.Millisecond)
	got := m.Snapshot().Buffer.CommitMs
	if got == nil || got.Commits != 2 || got.P50 != 2 || got.Max != 8 {
		t.Fatalf("commit_ms = %+v, want 2 commits, p50 2, max 8", got)
	}
}
