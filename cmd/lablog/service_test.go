package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTools puts logging stand-ins for systemctl and useradd first on PATH.
func fakeTools(t *testing.T) (logPath string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "calls.log")
	for _, name := range []string{"systemctl", "useradd"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %s\n[ \"$1\" = is-active ] && echo active\nexit 0\n", name, logPath)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logPath
}

func TestInstallPrintAndIntoImageRoot(t *testing.T) {
	root := t.TempDir()
	cfgDir := filepath.Join(root, "etc/lablog")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Relative paths resolve inside the image, not on this machine.
	cfg := "buffer: {path: data/buffer.db}\narchive: {path: /media/usb}\nstreams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n"
	if err := os.WriteFile(filepath.Join(cfgDir, "lablog.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	logPath := fakeTools(t)

	args := []string{"install", "--root", root, "--config", "/etc/lablog/lablog.yaml"}
	printed, err := runCmd(t, append(args, "--print")...)
	if err != nil {
		t.Fatalf("install --print: %v\n%s", err, printed)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/lablog run --config /etc/lablog/lablog.yaml\n",
		"ReadWritePaths=-/etc/lablog/data -/media/usb\n", "After=network-online.target time-sync.target relay-host.service media-usb.mount\n"} {
		if !strings.Contains(printed, want) {
			t.Errorf("printed unit lacks %q:\n%s", want, printed)
		}
	}
	if _, err := os.Stat(logPath); err == nil {
		t.Error("--print ran a command")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd")); err == nil {
		t.Error("--print installed something")
	}

	out, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/lablog.service"))
	if err != nil || !bytes.Equal(unit, []byte(printed)) {
		t.Errorf("installed unit differs from --print (%v)", err)
	}
	calls, _ := os.ReadFile(logPath)
	want := "useradd --root " + root + " --system --user-group --no-create-home --home-dir /var/lib/lablog --shell /usr/sbin/nologin lablog\n" +
		"systemctl --root=" + root + " enable lablog.service\n"
	if string(calls) != want {
		t.Errorf("install ran\n%s\nwant\n%s", calls, want)
	}
	if out, err := runCmd(t, "uninstall", "--root", root); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/lablog.service")); err == nil {
		t.Error("unit still there after uninstall")
	}
	if _, err := runCmd(t, "install", "--root", root, "--config", "etc/lablog/lablog.yaml"); err == nil {
		t.Error("a relative --config with --root was accepted")
	}
}

func TestInstallPrintLive(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lablog.yaml")
	_ = os.WriteFile(cfg, []byte("streams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n"), 0o644)
	out, err := runCmd(t, "install", "--print", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if !strings.Contains(out, "ExecStart="+exe+" run --config "+cfg+"\n") || !strings.Contains(out, "User=lablog\n") {
		t.Errorf("unit:\n%s", out)
	}
}

func TestStartStopStatus(t *testing.T) {
	logPath := fakeTools(t)
	for _, cmd := range []string{"start", "stop"} {
		if out, err := runCmd(t, cmd); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	out, err := run2(t, "status", "--config", filepath.Join(t.TempDir(), "none.yaml"))
	if err != nil || out != "lablog service: running\n" {
		t.Errorf("status: %v %q", err, out)
	}
	calls, _ := os.ReadFile(logPath)
	if want := "systemctl start lablog.service\nsystemctl stop lablog.service\nsystemctl is-active lablog.service\n"; string(calls) != want {
		t.Errorf("ran\n%s\nwant\n%s", calls, want)
	}
}

// run2 is runCmd with stdout alone.
func run2(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errs bytes.Buffer
	err := run(context.Background(), args, &out, &errs)
	return out.String(), err
}
