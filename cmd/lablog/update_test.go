package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keygen, sign and verify, as a technician runs them: a good signature
// passes, a changed file, a forged signature, another key and a missing
// signature are refused, each saying why; a key pair is never overwritten.
func TestUpdateSignVerify(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "trusted")
	os.Mkdir(keys, 0o755)
	out, err := runCmd(t, "update", "keygen", "--out", filepath.Join(dir, "fleet"))
	if err != nil || !strings.Contains(out, "fleet.pub") {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "fleet.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the private key's mode: %v %v", fi, err)
	}
	if _, err := runCmd(t, "update", "keygen", "--out", filepath.Join(dir, "fleet")); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("keygen over an existing key pair: %v", err)
	}
	runCmd(t, "update", "keygen", "--out", filepath.Join(dir, "stranger"))
	os.Rename(filepath.Join(dir, "fleet.pub"), filepath.Join(keys, "fleet.pub"))

	deb := filepath.Join(dir, "lablog_1.1_arm64.deb")
	os.WriteFile(deb, []byte("not really a package, but signed"), 0o644)
	if out, err := runCmd(t, "update", "sign", "--key", filepath.Join(dir, "fleet.key"), deb); err != nil || strings.TrimSpace(out) != deb+".sig" {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "update", "verify", "--keys", keys, deb); err != nil || !strings.Contains(out, "good signature by key") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	good, _ := os.ReadFile(deb + ".sig")

	refused := func(what, want string) {
		t.Helper()
		out, err := runCmd(t, "update", "verify", "--keys", keys, deb)
		if err == nil || !strings.Contains(out, "REFUSED") || !strings.Contains(out, want) {
			t.Errorf("%s: %v, want REFUSED saying %q:\n%s", what, err, want, out)
		}
	}
	os.WriteFile(deb, []byte("not really a package, but signeD"), 0o644)
	refused("a changed file", "is not the one signed")
	os.WriteFile(deb, []byte("not really a package, but signed"), 0o644)
	// The signed lines changed (a forger's edit): the signature no longer fits.
	os.WriteFile(deb+".sig", []byte(strings.Replace(string(good), "size 32", "size 33", 1)), 0o644)
	refused("a forged signature", "forged or damaged")
	runCmd(t, "update", "sign", "--key", filepath.Join(dir, "stranger.key"), deb)
	refused("another key", "does not trust")
	os.Remove(deb + ".sig")
	refused("no signature", "has no signature file lablog_1.1_arm64.deb.sig")
	if _, err := runCmd(t, "update", "sign", "--key", filepath.Join(keys, "fleet.pub"), deb); err == nil || !strings.Contains(err.Error(), "want a lablog-update-private-key-v1") {
		t.Errorf("signing with a public key: %v", err)
	}
}

// apply and boot need root, and say so before touching anything.
func TestUpdateApplyNeedsRoot(t *testing.T) {
	defer func(f func() int) { updateEUID = f }(updateEUID)
	updateEUID = func() int { return 1000 }
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lablog.yaml")
	os.WriteFile(cfg, []byte("buffer:\n  path: "+filepath.Join(dir, "buffer.db")+"\nstreams:\n  - name: spin30\n    url: ws://127.0.0.1:9/spin30\n"), 0o600)
	for _, args := range [][]string{{"apply", "--config", cfg, "x.deb"}, {"boot", "--config", cfg}} {
		_, err := runCmd(t, append([]string{"update"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "needs root") || !strings.Contains(err.Error(), "sudo lablog update "+args[0]) {
			t.Errorf("update %s as a user: %v", args[0], err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "faults.json")); err == nil {
		t.Error("a refused run recorded a fault")
	}
}
