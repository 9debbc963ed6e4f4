package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out, &out)
	return out.String(), err
}

func TestUsageErrors(t *testing.T) {
	if out, err := runCmd(t); !errors.Is(err, errUsage) || !strings.Contains(out, "Usage:") {
		t.Errorf("no args: %v %q", err, out)
	}
	if out, err := runCmd(t, "frobnicate"); !errors.Is(err, errUsage) || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v %q", err, out)
	}
	if out, err := runCmd(t, "version"); err != nil || !strings.HasPrefix(out, "lablog ") {
		t.Errorf("version: %v %q", err, out)
	}
}

func writeArchiveFile(t *testing.T, root, stream string, first uint64, n int) string {
	t.Helper()
	hour := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	w, err := archive.Create(root, stream, hour, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rec := frame.Record{Stream: stream, Received: hour.Add(time.Duration(i) * time.Second), Kind: frame.Text,
			Data: []byte(fmt.Sprintf(`{"user":"u","t":1,"payload":{"n":%d}}`, i))}
		if err := w.Add(archive.Entry{Seq: first + uint64(i), Rec: rec}); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon runs the real binary and returns it once its log shows want.
func startDaemon(t *testing.T, cfgPath, want string) (*exec.Cmd, *testkit.LogBuffer) {
	t.Helper()
	cmd := exec.Command(lablogBinary(t), "run", "--config", cfgPath)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	log := &testkit.LogBuffer{} // read while the scanner below still writes it
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		seen := false
		for sc.Scan() {
			_, _ = log.Write([]byte(sc.Text() + "\n"))
			if !seen && strings.Contains(sc.Text(), want) {
				seen = true
				found <- true
			}
		}
		if !seen {
			found <- false
		}
		_, _ = io.Copy(io.Discard, pipe)
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("daemon exited without logging %q", want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not log %q within 20 s", want)
	}
	return cmd, log
}

func daemonConfig(t *testing.T, hostURL string) (cfgPath, bufPath string) {
	t.Helper()
	dir := t.TempDir()
	bufPath = filepath.Join(dir, "buffer.db")
	root := filepath.Join(dir, "archive")
	_ = os.Mkdir(root, 0o755)
	cfgPath = filepath.Join(dir, "lablog.yaml")
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\nstatus: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\nstreams:\n  - {name: spin30, relay_host: %s}\n",
		bufPath, root, hostURL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, bufPath
}

func newTestHost(t *testing.T) *labsim.Host {
	t.Helper()
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	return host
}
