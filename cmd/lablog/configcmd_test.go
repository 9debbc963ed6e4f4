package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

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
	// It shows an inline token, which makes the file a secret.
	ex := filepath.Join(dir, "example.yaml")
	_ = os.WriteFile(ex, []byte(out), 0o644)
	if _, err := runCmd(t, "config", "check", ex); err == nil || !strings.Contains(err.Error(), "mode 0644 lets others read or change it: chmod 600 "+ex) {
		t.Errorf("the printed example, world-readable: %v, want refused", err)
	}
	_ = os.Chmod(ex, 0o600)
	if _, err := runCmd(t, "config", "check", ex); err != nil {
		t.Errorf("the printed example does not check: %v", err)
	}
}

// The packaged example cannot work: config check says why (and fails with
// --strict), config ready keeps the service's unit idle, run refuses it,
// and status says why the service is not running. The exit statuses are
// the real binary's, as systemd and scripts see them.
func TestExampleIsNotReady(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary; not in -short")
	}
	bin := lablogBinary(t)
	dir := t.TempDir()
	ex := filepath.Join(dir, "lablog.yaml")
	out, err := runCmd(t, "config", "example")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ex, []byte(out), 0o640); err != nil {
		t.Fatal(err)
	}
	status := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	notReady := ex + " is still the example configuration (example: true)"
	code, out := status("config", "check", ex)
	if code != 0 || !strings.Contains(out, "warning: "+notReady) || !strings.Contains(out, "warning: streams[3].url: example.org is an example host name") ||
		!strings.Contains(out, "warning: 17 streams have relay tokens that cannot work") {
		t.Errorf("config check: exit %d\n%s", code, out)
	}
	if code, out := status("config", "check", "--strict", ex); code != 1 || !strings.Contains(out, "config check --strict: "+ex+": 19 warnings") {
		t.Errorf("config check --strict: exit %d, want 1\n%s", code, out)
	}
	if code, out := status("config", "ready", ex); code != 1 || !strings.Contains(out, notReady) {
		t.Errorf("config ready: exit %d, want 1\n%s", code, out)
	}
	if code, out := status("run", "--config", ex); code != 1 || !strings.Contains(out, notReady) {
		t.Errorf("run: exit %d, want 1\n%s", code, out)
	}

	// Made one's own: ready, and --strict passes once nothing is left to warn about.
	own := filepath.Join(dir, "own.yaml")
	_ = os.WriteFile(own, []byte("streams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n"), 0o640)
	for _, args := range [][]string{{"config", "ready", own}, {"config", "check", "--strict", own}} {
		if code, out := status(args...); code != 0 {
			t.Errorf("%q: exit %d, want 0\n%s", args, code, out)
		}
	}
	// A file that does not load is for run to report, not a reason to stay idle.
	if code, out := status("config", "ready", filepath.Join(dir, "missing.yaml")); code != 0 {
		t.Errorf("config ready on a missing file: exit %d, want 0\n%s", code, out)
	}

	// lablog status, with the unit not running (a stand-in systemctl says inactive).
	tools := t.TempDir()
	_ = os.WriteFile(filepath.Join(tools, "systemctl"), []byte("#!/bin/sh\n[ \"$1\" = is-active ] && echo inactive\nexit 3\n"), 0o755)
	t.Setenv("PATH", tools+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := run2(t, "status", "--config", ex); err != nil || !strings.Contains(out, "\nnot started: "+notReady) {
		t.Errorf("status: %v\n%s", err, out)
	}
}

// config check reads the addlog credentials as the daemon would: a file
// others can read is refused, a good one is summarised without a secret.
func TestConfigCheckAddLog(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfg, []byte(addLogSection(t, dir, `"https://lab.example"`)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "config", "check", cfg)
	if err != nil || !strings.Contains(out, "addlog: 127.0.0.1:0, 1 credentials, origins https://lab.example") || strings.Contains(out, alPass) {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	if err := os.Chmod(filepath.Join(dir, "addlog-credentials"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "config", "check", cfg); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a shared credentials file passed: %v\n%s", err, out)
	}
}

// config check reads the forward credentials too: without them the daemon
// would not start; the summary names the upstream, never the password.
func TestConfigCheckForward(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lablog.yaml")
	fwd := filepath.Join(dir, "forward-credentials")
	yaml := strings.TrimSuffix(addLogSection(t, dir, `"*"`), "}") + `, forward: {url: "https://analytics.example/"}}` + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "config", "check", cfg); err == nil || !strings.Contains(err.Error(), "forward credentials "+fwd+": missing") {
		t.Fatalf("missing forward credentials passed: %v\n%s", err, out)
	}
	if err := os.WriteFile(fwd, []byte("lablog:up-s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "config", "check", cfg); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a shared forward credentials file passed: %v\n%s", err, out)
	}
	if err := os.Chmod(fwd, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "config", "check", cfg)
	if err != nil || !strings.Contains(out, "addlog forward: to https://analytics.example/ as lablog") || strings.Contains(out, "up-s3cret") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
}
