package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// The live store's matrices, exported by lablog run to analytics/ on the
// archive drive, equal what lablog analytics rebuilds from the archive and
// the buffer, after random SIGKILLs of lablog run under load while
// compactions delete records: nothing lost, nothing counted twice.
func TestAnalyticsStoreSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; not in -short")
	}
	bin := lablogBinary(t)
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	host.CountOnly = true
	names := []string{"spin30", "spin31", "pend00"}
	dir := t.TempDir()
	cfgPath, bufPath, root := crashConfig(t, dir, host.URL(), names, "", "analytics: {export: 1s}\n")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, Rate: 200, JoinProb: 0.3, Seed: 5})
	labCtx, stopLab := context.WithCancel(ctx)
	labDone := make(chan struct{})
	go func() { defer close(labDone); _ = lab.Run(labCtx) }()

	rng := rand.New(rand.NewPCG(3, 4))
	const kills = 10
	for i := range kills {
		cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("run%02d.log", i)))
		cmd.Stderr = logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A random moment: mid-commit, mid-compaction, mid-catch-up or mid-export.
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
	}
	stopLab()
	<-labDone

	// A clean run with no more traffic: it catches up and exports at start.
	logPath := filepath.Join(dir, "clean.log")
	logf, _ := os.Create(logPath)
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the store's first export", func() bool {
		log, _ := os.ReadFile(logPath)
		return bytes.Contains(log, []byte("analytics store: matrices exported"))
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("clean run: %v\n%s", err, log)
	}
	logf.Close()

	out := filepath.Join(dir, "rebuilt")
	if msg, err := runCmd(t, "analytics", "--archive", root, "--buffer", bufPath, "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	} else {
		t.Log(strings.TrimSpace(msg))
	}
	want, _ := filepath.Glob(filepath.Join(out, "*-adjacency.csv"))
	got, _ := filepath.Glob(filepath.Join(root, "analytics", "*-adjacency.csv"))
	if len(want) < 5 || len(got) != len(want) {
		t.Fatalf("%d matrices exported by the store, %d rebuilt from the archive", len(got), len(want))
	}
	files, _ := filepath.Glob(filepath.Join(root, "stream=*", "*", "*.parquet"))
	if len(files) < kills {
		t.Errorf("only %d archive files: the compactions did not run under the kills", len(files))
	}
	differ := 0
	for _, path := range want {
		a, _ := os.ReadFile(path)
		b, err := os.ReadFile(filepath.Join(root, "analytics", filepath.Base(path)))
		if err != nil || !bytes.Equal(a, b) {
			differ++
			if differ <= 3 {
				t.Errorf("%s: store's export differs (%v):\nstore:\n%s\nrebuilt:\n%s", filepath.Base(path), err, b, a)
			}
		}
	}
	if differ > 0 {
		t.Errorf("%d of %d matrices differ", differ, len(want))
	}
}
