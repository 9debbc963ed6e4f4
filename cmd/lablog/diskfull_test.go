package main

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/testing/testkit"
	"github.com/practable/lablog/internal/testing/testkit/loopfs"
)

// A full disk under the buffer (a real ext4, far below max_size) shows as
// the frames_refused fault, FAILING, with the writer not stalled; once
// space returns, frames are recorded again.
func TestDiskFullShowsAsFramesRefused(t *testing.T) {
	dir := loopfs.Mount(t, 32<<20)
	d := runInProcessIn(t, dir, []string{"spin30"}, "", "")
	rng := rand.New(rand.NewPCG(3, 4))
	publish := func() { // 8 KiB that do not compress
		b := make([]byte, 8<<10)
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		d.host.Publish("spin30", b, false)
	}
	publish()
	testkit.Eventually(t, 10*time.Second, "the first frame committed", func() bool {
		return d.status(t).Buffer.CommittedTotal >= 1
	})
	release := loopfs.Fill(t, dir)
	var s status.Snapshot
	testkit.Eventually(t, 20*time.Second, "the status to say the disk is full and frames are refused", func() bool {
		publish()
		s = d.status(t)
		return s.Buffer.DiskFull && s.Buffer.Full && s.Buffer.RefusedTotal > 0 && s.Health == status.HealthFailing
	})
	if s.Buffer.WriterStalled || s.Buffer.QueueDepth > 1 {
		t.Fatalf("writer stalled %v, queue %d: a full disk must refuse frames, not hold them", s.Buffer.WriterStalled, s.Buffer.QueueDepth)
	}
	var refused *status.FaultStatus
	for i, f := range s.Faults {
		if f.Kind == string(fault.FramesRefused) {
			refused = &s.Faults[i]
		}
	}
	if refused == nil || refused.Level != status.HealthFailing || !strings.Contains(refused.Detail, "disk holding the buffer") {
		t.Fatalf("faults %+v: want frames_refused, failing, saying the disk is full", s.Faults)
	}
	release()
	committed := s.Buffer.CommittedTotal
	if !testkit.Poll(20*time.Second, func() bool {
		publish()
		s = d.status(t)
		return !s.Buffer.Full && !s.Buffer.DiskFull && s.Buffer.CommittedTotal > committed
	}) {
		t.Fatalf("frames not recorded again within 20 s of space returning: buffer %+v\n%s", s.Buffer, d.logs)
	}
}
