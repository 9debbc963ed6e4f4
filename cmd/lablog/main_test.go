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
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/archive"
	"github.com/practable/lablog/internal/frame"
	"github.com/practable/lablog/internal/labsim"
	"github.com/practable/lablog/internal/testkit"
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

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(good, []byte("streams:\n  - name: spin30-41\n    relay_host: ws://127.0.0.1:8888\n"), 0o644)
	if out, err := runCmd(t, "config", "check", good); err != nil || !strings.Contains(out, "ok: "+good+": 12 streams") {
		t.Errorf("good config: %v %q", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("streams:\n  - name: spin41-30\n    relay_host: ws://h\nbogus: 1\n"), 0o644)
	_, err := runCmd(t, "config", "check", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4") {
		t.Errorf("bad config: %v, want the unknown key's line", err)
	}
	out, err := runCmd(t, "config", "example")
	if err != nil || !strings.Contains(out, "streams:") {
		t.Errorf("example: %v", err)
	}
	ex := filepath.Join(dir, "example.yaml")
	_ = os.WriteFile(ex, []byte(out), 0o644)
	if _, err := runCmd(t, "config", "check", ex); err != nil {
		t.Errorf("the printed example does not check: %v", err)
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

func TestVerifyCommand(t *testing.T) {
	root := t.TempDir()
	writeArchiveFile(t, root, "spin30", 1, 10)
	writeArchiveFile(t, root, "spin31", 1, 10)
	if out, err := runCmd(t, "verify", root); err != nil || !strings.Contains(out, "ok: 2 files verified") {
		t.Fatalf("good tree: %v %q", err, out)
	}
	dup := writeArchiveFile(t, root, "spin30", 5, 3) // overlaps seqs 5..7
	bad := writeArchiveFile(t, root, "spin32", 1, 10)
	data, _ := os.ReadFile(bad)
	_ = os.WriteFile(bad, data[:len(data)/2], 0o644)
	out, err := runCmd(t, "verify", root)
	if err == nil {
		t.Fatalf("verify passed a damaged tree:\n%s", out)
	}
	for _, want := range []string{"FAIL " + bad, filepath.Base(dup)} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %q:\n%s", want, out)
		}
	}
	if _, err := runCmd(t, "verify", filepath.Join(root, "nope")); err == nil {
		t.Error("verify of a missing folder passed")
	}
	// An empty folder (an unmounted drive's mount point) is not a pass.
	empty := t.TempDir()
	if out, err := runCmd(t, "verify", empty); err == nil || !strings.Contains(err.Error(), "no Parquet files and no .lablog-archive marker") {
		t.Errorf("verify of an empty folder: %v %q", err, out)
	}
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

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	out, err := runCmd(t, "demo", "--dir", dir, "--duration", "3s", "--streams", "4", "--rate", "20", "--listen", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	// One file per device at the end, plus one per device for each scheduled
	// (10 s aligned) compaction that fell inside the run.
	if m := regexp.MustCompile(`all (\d+) files verified`).FindStringSubmatch(out); m == nil || m[1] != "4" && m[1] != "8" {
		t.Errorf("demo did not verify 4 or 8 files:\n%s", out)
	}
	for _, want := range []string{"4/4 connected", "archives the open hour every 10s", "received_at ", " message ",
		"lablog head -n 20 FILE", "read_parquet('" + dir + "/archive/**/*.parquet', hive_partitioning = true, union_by_name = true)"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if _, problems := archive.VerifyTree(filepath.Join(dir, "archive")); len(problems) > 0 {
		t.Errorf("demo archive: %v", problems)
	}
}
