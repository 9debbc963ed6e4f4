package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// importEnv is a fake system for rootfs-overlay's lablog-import-config:
// a boot partition folder, /etc/lablog, the SSH keys folder and /run.
type importEnv struct {
	t                       *testing.T
	boot, etc, keys, rundir string
	nm                      string // NetworkManager's system-connections
	env                     []string
}

// distBinary is a binary `make build build-arm64` made (make test builds
// them first, so that no test compiles while others measure time).
func distBinary(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "dist", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: make test builds it (make build build-arm64)", p)
		}
		t.Skipf("%s missing: run make build build-arm64", p)
	}
	return p
}

// distDeb is make deb's package for arch in dist/.
func distDeb(t *testing.T, arch string) string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(repoRoot(t), "dist", "lablog_*_"+arch+".deb"))
	if len(found) != 1 {
		if os.Getenv("CI") != "" {
			t.Fatalf("want one dist/lablog_*_%s.deb, found %v: make test builds it (make deb)", arch, found)
		}
		t.Skipf("want one dist/lablog_*_%s.deb, found %v: run make deb", arch, found)
	}
	return found[0]
}

func newImportEnv(t *testing.T) *importEnv {
	d := t.TempDir()
	e := &importEnv{t: t, boot: filepath.Join(d, "boot"), etc: filepath.Join(d, "etc/lablog"),
		keys: filepath.Join(d, "etc/ssh/lablog-keys"), rundir: filepath.Join(d, "run")}
	defaults := filepath.Join(d, "lablog-image")
	if err := os.WriteFile(defaults, []byte("LABLOG_ADMIN_USER=labadmin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.nm = filepath.Join(d, "etc/NetworkManager/system-connections")
	e.env = append(os.Environ(), "LABLOG_NM_DIR="+e.nm, "LABLOG_BOOT_DIR="+e.boot, "LABLOG_ETC_DIR="+e.etc, "LABLOG_KEYS_DIR="+e.keys,
		"LABLOG_RUN_DIR="+e.rundir, "LABLOG_BIN="+distBinary(t, "lablog"), "LABLOG_GROUP=root",
		"LABLOG_IMAGE_DEFAULTS="+defaults)
	return e
}

func (e *importEnv) card(name, content string) {
	e.t.Helper()
	p := filepath.Join(e.boot, "lablog", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *importEnv) run() (string, error) {
	script := filepath.Join(repoRoot(e.t), "rootfs-overlay/usr/local/sbin/lablog-import-config")
	cmd := exec.Command(script)
	cmd.Env = e.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *importEnv) read(path string) string {
	e.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(data)
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

const goodConfig = "streams:\n  - name: spin30-31\n    relay_host: ws://127.0.0.1:8888\n"

func TestImportConfig(t *testing.T) {
	e := newImportEnv(t)

	// No folder on the card: nothing to do, nothing changes.
	if out, err := e.run(); err != nil || exists(e.etc) {
		t.Fatalf("no folder: %v %s", err, out)
	}

	// First boot: config, tokens, keys.
	e.card("lablog.yaml", goodConfig)
	e.card("tokens/log.token.spin30", "tok30")
	e.card("tokens/log.access.spin30", "https://relay/session/spin30-log")
	e.card("authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIadmin admin@laptop\n")
	e.card("archive_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIarch researcher@lab\n")
	if out, err := e.run(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if got := e.read(filepath.Join(e.etc, "lablog.yaml")); got != goodConfig {
		t.Errorf("lablog.yaml imported as %q", got)
	}
	for p, want := range map[string]os.FileMode{e.etc: 0o750, filepath.Join(e.etc, "lablog.yaml"): 0o640,
		filepath.Join(e.etc, "tokens"): 0o750, filepath.Join(e.etc, "tokens/log.token.spin30"): 0o640,
		filepath.Join(e.keys, "labadmin"): 0o644, filepath.Join(e.keys, "archive"): 0o644} {
		if got := mode(t, p); got != want {
			t.Errorf("%s: mode %04o, want %04o", p, got, want)
		}
	}
	if got := e.read(filepath.Join(e.etc, "tokens/log.token.spin30")); got != "tok30" {
		t.Errorf("token %q", got)
	}
	if exists(filepath.Join(e.boot, "lablog/tokens")) {
		t.Error("the tokens are still on the card")
	}
	if !strings.Contains(e.read(filepath.Join(e.keys, "archive")), "researcher@lab") {
		t.Error("archive keys not imported")
	}

	// A broken config: the last good one stays, the error is on the card
	// and in /run, the unit fails.
	e.card("lablog.yaml", "streams:\n  - name: spin30\n    relay_hots: ws://127.0.0.1:8888\n")
	out, err := e.run()
	if err == nil {
		t.Fatalf("a broken config was accepted:\n%s", out)
	}
	if got := e.read(filepath.Join(e.etc, "lablog.yaml")); got != goodConfig {
		t.Errorf("the last good config was replaced by %q", got)
	}
	report := e.read(filepath.Join(e.boot, "lablog/IMPORT-ERROR.txt"))
	if !strings.Contains(report, "relay_hots") || !strings.Contains(e.read(filepath.Join(e.rundir, "error")), "relay_hots") {
		t.Errorf("error report does not name the bad key: %q", report)
	}
	if exists(filepath.Join(e.etc, ".lablog.yaml.new")) {
		t.Error("candidate left behind")
	}
	if got := e.read(filepath.Join(e.etc, "tokens/log.token.spin30")); got != "tok30" {
		t.Errorf("tokens changed without new ones: %q", got)
	}

	// Fixed on the card: imported, error note gone. New tokens replace the
	// whole set.
	fixed := goodConfig + "compaction:\n  grace: 5m\n"
	e.card("lablog.yaml", fixed)
	e.card("tokens/log.token.spin31", "tok31")
	if out, err := e.run(); err != nil {
		t.Fatalf("fixed config: %v\n%s", err, out)
	}
	if got := e.read(filepath.Join(e.etc, "lablog.yaml")); got != fixed {
		t.Errorf("fixed config not imported: %q", got)
	}
	if exists(filepath.Join(e.boot, "lablog/IMPORT-ERROR.txt")) || exists(filepath.Join(e.rundir, "error")) {
		t.Error("error report left after a good import")
	}
	if exists(filepath.Join(e.etc, "tokens/log.token.spin30")) || !exists(filepath.Join(e.etc, "tokens/log.token.spin31")) {
		t.Error("new tokens did not replace the old set")
	}

	// Junk in authorized_keys is refused, and reported.
	e.card("authorized_keys", "my password is hunter2\n")
	if out, err := e.run(); err == nil || !strings.Contains(out, "no public key") {
		t.Errorf("junk keys: %v %s", err, out)
	}
	if !strings.Contains(e.read(filepath.Join(e.keys, "labadmin")), "admin@laptop") {
		t.Error("good keys replaced by junk")
	}
}

// network.yaml becomes NetworkManager keyfiles (owner-only), the Wi-Fi
// country goes onto cmdline.txt, and the file leaves the card, a copy
// without its password in its place. Imager's overlapping settings are
// named in the log. A bad file is reported and changes nothing.
func TestImportNetwork(t *testing.T) {
	e := newImportEnv(t)
	const secret = "lab wifi passphrase"
	e.card("network.yaml", "country: GB\nwifi:\n  - ssid: LabNet\n    password: \""+secret+"\"\n")
	e.card("authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIadmin admin@laptop\n")
	cmdline := filepath.Join(e.boot, "cmdline.txt")
	if err := os.WriteFile(cmdline, []byte("console=serial0,115200 root=PARTUUID=abc-02 rootwait ro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Raspberry Pi Imager's seed files beside lablog/ (cloud-init's).
	if err := os.WriteFile(filepath.Join(e.boot, "network-config"), []byte("network:\n  version: 2\n  wifis:\n    wlan0:\n      dhcp4: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.boot, "user-data"), []byte("#cloud-config\nusers:\n- name: tech\n  ssh_authorized_keys:\n  - ssh-ed25519 AAAA tech\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A keyfile of an earlier import, and one of Imager's: only lablog's set is replaced.
	if err := os.MkdirAll(e.nm, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"lablog-wifi-OldNet.nmconnection", "netplan-wlan0-Home.nmconnection"} {
		if err := os.WriteFile(filepath.Join(e.nm, f), []byte("[connection]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.run()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	kf := filepath.Join(e.nm, "lablog-wifi-LabNet.nmconnection")
	if got := e.read(kf); !strings.Contains(got, "psk="+secret+"\n") || mode(t, kf) != 0o600 {
		t.Errorf("keyfile mode %04o:\n%s", mode(t, kf), got)
	}
	if exists(filepath.Join(e.nm, "lablog-wifi-OldNet.nmconnection")) || !exists(filepath.Join(e.nm, "netplan-wlan0-Home.nmconnection")) {
		t.Error("the import must replace its own earlier keyfiles and keep others")
	}
	if exists(filepath.Join(e.boot, "lablog/network.yaml")) {
		t.Error("network.yaml is still on the card")
	}
	if got := e.read(filepath.Join(e.boot, "lablog/network-imported.yaml")); strings.Contains(got, secret) || !strings.Contains(got, "ssid: LabNet") {
		t.Errorf("network-imported.yaml on the card:\n%s", got)
	}
	left, _ := exec.Command("grep", "-r", "-l", secret, e.boot).Output()
	if len(left) != 0 {
		t.Errorf("the Wi-Fi password is still on the card in %s", left)
	}
	if got := e.read(cmdline); got != "console=serial0,115200 root=PARTUUID=abc-02 rootwait ro cfg80211.ieee80211_regdom=GB\n" {
		t.Errorf("cmdline.txt: %q", got)
	}
	for _, want := range []string{"imported network.yaml", "removed network.yaml", "Wi-Fi country GB",
		"both Raspberry Pi Imager (network-config) and lablog/network.yaml", "SSH keys come from both Raspberry Pi Imager"} {
		if !strings.Contains(out, want) {
			t.Errorf("the import log lacks %q:\n%s", want, out)
		}
	}

	// Another country replaces the word; a bad file is reported, stays on
	// the card for the technician to fix, and changes nothing.
	e.card("network.yaml", "country: DE\nwifi:\n  - ssid: LabNet\n    password: \""+secret+"\"\n")
	if out, err := e.run(); err != nil {
		t.Fatalf("second import: %v\n%s", err, out)
	}
	if got := e.read(cmdline); strings.Count(got, "ieee80211_regdom") != 1 || !strings.Contains(got, "regdom=DE\n") {
		t.Errorf("cmdline.txt after a new country: %q", got)
	}
	e.card("network.yaml", "country: GB\nwifi:\n  - ssid: LabNet\n    password: short\n")
	out, err = e.run()
	if err == nil || !strings.Contains(e.read(filepath.Join(e.boot, "lablog/IMPORT-ERROR.txt")), "wifi[0].password") {
		t.Errorf("a bad network.yaml: %v\n%s", err, out)
	}
	if !strings.Contains(e.read(kf), "psk="+secret+"\n") || !exists(filepath.Join(e.boot, "lablog/network.yaml")) {
		t.Error("a bad network.yaml changed the keyfiles or left the card")
	}
}
