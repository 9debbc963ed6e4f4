package main

import (
	"os"
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
