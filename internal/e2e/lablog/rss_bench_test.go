package lablog

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/lablogbin"
)

// BenchmarkRSS80Streams runs the real binary recording 80 simulated streams
// (5 messages/s each, glued frames included) for 10 s per iteration and
// reports its resident memory, peak and at the end:
//
//	go test -run '^$' -bench RSS80 -benchtime 3x ./cmd/lablog
func BenchmarkRSS80Streams(b *testing.B) {
	bin := lablogbin.Path(b)
	var names []string
	for i := range 80 {
		names = append(names, fmt.Sprintf("spin%02d", i))
	}
	for b.Loop() {
		host, err := labsim.NewHost("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		host.CountOnly = true
		dir := b.TempDir()
		cfgPath := filepath.Join(dir, "lablog.yaml")
		cfg := fmt.Sprintf("buffer: {path: %s/buffer.db}\narchive: {path: %s, require: none}\nstatus: {listen: \"\"}\nled: {path: \"\"}\nstreams:\n  - {name: spin00-79, relay_host: %s}\n",
			dir, dir, host.URL())
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, n := range names {
			if err := host.WaitClients(ctx, n, 1); err != nil {
				b.Fatal(err)
			}
		}
		lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, Rate: 5, JoinProb: 0.15, Seed: 3})
		_ = lab.Run(ctx)
		cancel()
		hwm, rss := lablogbin.Memory(b, cmd.Process.Pid)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = host.Close()
		b.ReportMetric(hwm, "peak-rss-MiB")
		b.ReportMetric(rss, "rss-MiB")
	}
}
