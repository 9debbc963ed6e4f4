package recorder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// BenchmarkEndToEnd pushes unpaced traffic from 12 simulated streams through
// real loopback websockets into the recorder and reports committed messages
// per second, from the first publish until every frame is received and the
// queue is drained (the last commit may still be in flight), and how many
// frames the full queue dropped:
//
//	go test -run '^$' -bench EndToEnd -benchtime 5x ./internal/record/recorder
func BenchmarkEndToEnd(b *testing.B) {
	const perStream = 5000
	var names []string
	for i := 30; i <= 41; i++ {
		names = append(names, fmt.Sprintf("spin%d", i))
	}
	var total time.Duration
	var messages, dropped int64
	for b.Loop() {
		host, err := labsim.NewHost("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		host.CountOnly = true
		cfg := testConfig(b, host.URL(), names)
		rec, err := recorder.Open(wire.Recorder(cfg, quietLogger()))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rec.Run(ctx) }()
		for _, n := range names {
			if err := host.WaitClients(context.Background(), n, 1); err != nil {
				b.Fatal(err)
			}
		}
		lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, JoinProb: 0.2, Seed: 5})
		start := time.Now()
		if err := lab.RunN(context.Background(), perStream); err != nil {
			b.Fatal(err)
		}
		var delivered int64
		for _, n := range names {
			delivered += host.DeliveredCount(n)
		}
		testkit.Eventually(b, time.Minute, "every frame received and the queue drained", func() bool {
			var received int64
			for _, s := range rec.Sources() {
				received += s.Frames
			}
			w := rec.Writer().Stats()
			return received == delivered && w.Queued == 0
		})
		dropped += rec.Writer().Stats().Dropped
		total += time.Since(start)
		messages += int64(perStream * len(names))
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		_ = host.Close()
	}
	b.ReportMetric(float64(messages)/total.Seconds(), "messages/s")
	b.ReportMetric(float64(dropped), "dropped")
}
