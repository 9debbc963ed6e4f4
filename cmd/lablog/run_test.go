package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSecondInstanceFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; not in -short")
	}
	host := newTestHost(t)
	cfgPath, _ := daemonConfig(t, host.URL())
	startDaemon(t, cfgPath, "lablog recording")
	start := time.Now()
	_, err := runCmd(t, "run", "--config", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "locked by another process (is another lablog running?)") {
		t.Fatalf("second instance: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second instance took %v to fail", took)
	}
	_, err = runCmd(t, "compact", "--config", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "SIGUSR1") {
		t.Errorf("compact while running: %v, want the SIGUSR1 hint", err)
	}
}

func TestCorruptBufferStartsFreshAndSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; not in -short")
	}
	host := newTestHost(t)
	cfgPath, bufPath := daemonConfig(t, host.URL())
	if err := os.WriteFile(bufPath, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, log := startDaemon(t, cfgPath, "BUFFER WAS CORRUPT")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := host.WaitClients(ctx, "spin30", 1); err != nil {
		t.Fatalf("the daemon did not go on recording: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, log)
	}
	q, _ := filepath.Glob(bufPath + ".corrupt-*")
	if len(q) != 1 {
		t.Fatalf("quarantined files: %v", q)
	}
	if got, _ := os.ReadFile(q[0]); !bytes.HasPrefix(got, []byte("garbage!")) {
		t.Error("the quarantined file is not the corrupt buffer")
	}
}
