package debpkg

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/tools/aptrepo"
)

// systemctlShim stands in for systemd, which does not run in the chroot,
// for lablog.service alone: it runs lablog as its user in the background
// (a subshell waits for it, so its end is seen); everything else goes to
// the root's own systemctl.
const systemctlShim = `#!/bin/sh
pidfile=/run/lablog-shim.pid
case " $* " in *" lablog.service "*) ;; *) exec /usr/bin/systemctl "$@" ;; esac
running() { [ -f $pidfile ] && kill -0 "$(cat $pidfile)" 2>/dev/null; }
stop() {
	if running; then kill "$(cat $pidfile)"; fi
	i=0
	while [ -f $pidfile ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	rm -f $pidfile
}
case "$1" in
restart | start)
	stop
	(
		setpriv --reuid=lablog --regid=lablog --init-groups /usr/bin/lablog run --config /etc/lablog/lablog.yaml >>/tmp/shim/lablog.log 2>&1 &
		echo $! >$pidfile
		wait $!
		rm -f $pidfile
	) >/dev/null 2>&1 &
	;;
stop) stop ;;
is-active) if running; then echo active; else echo inactive; exit 3; fi ;;
show) if running; then printf 'ActiveState=active\nSubState=running\nResult=success\nNRestarts=0\n'; else printf 'ActiveState=inactive\nSubState=dead\nResult=exit-code\nNRestarts=0\n'; fi ;;
*) exec /usr/bin/systemctl "$@" ;;
esac
`

// badPackage is a lablog package whose binary says its version and exits
// at once when run: an update that must fail its health check.
func badPackage(t *testing.T, out string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "badlablog")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=debtest-bad", "-o", bin, "./testdata/badlablog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build badlablog: %v\n%s", err, b)
	}
	spec := Spec{Arch: "arm64", Version: "1.2", Binary: bin, Host: buildLablog(t, "amd64", "debtest-bad"),
		Readme: filepath.Join(repoRoot(t), "README.md"), Maintainer: "lablog tests <lablog-tests@example.org>",
		Date: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Out: out}
	p, err := Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lablog update in the arm64 root: a good signed update installs and
// passes its health check (the service restarted, /healthz answering); a
// package changed after signing and an unsigned one are refused; a signed
// package whose lablog exits at once is rolled back to the kept package,
// and the reason is a fault the status page shows. Then the apt route: the
// root installs lablog from a signed repository (file://, signed-by).
func TestUpdateInChroot(t *testing.T) {
	t.Parallel()
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	c := newChroot(t)
	pkgs := t.TempDir()
	v10 := buildPackage(t, "arm64", "1.0", "debtest-1.0", 0, pkgs)
	v11 := buildPackage(t, "arm64", "1.1", "debtest-1.1", 0, pkgs)
	bad := badPackage(t, pkgs)
	host := buildLablog(t, "amd64", "debtest-1.0")
	step("packages built")

	// The fleet's key: the public half trusted in the root, the private
	// one signs here.
	keys := t.TempDir()
	if out, err := exec.Command(host, "update", "keygen", "--out", filepath.Join(keys, "fleet")).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(filepath.Join(keys, "fleet.pub"))
	c.write("/etc/lablog/update-keys/fleet.pub", string(pub), 0o644)
	if out, err := exec.Command(host, "update", "sign", "--key", filepath.Join(keys, "fleet.key"), v11, bad).CombinedOutput(); err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	put := func(dst string, srcs ...string) {
		for _, src := range srcs {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			c.write(dst, string(data), 0o644)
		}
	}

	if out, err := c.dpkgInstall(v10); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	c.must("/usr/bin/lablog", "update", "keep", "/tmp/"+filepath.Base(v10))
	port := freePort(t)
	c.write("/etc/lablog/lablog.yaml", strings.Replace(testConfig, `listen: ""`, "listen: 127.0.0.1:"+strconv.Itoa(port), 1), 0o640)
	c.write("/media/lablog/.lablog-archive", "", 0o644)
	c.write("/tmp/shim/systemctl", systemctlShim, 0o755)
	t.Cleanup(func() { c.run("systemctl", "stop", "lablog.service") })
	c.must("systemctl", "restart", "lablog.service")
	step("1.0 installed, kept and running")

	apply := func(file string) (string, error) {
		return c.run("/usr/bin/lablog", "update", "apply", "--timeout", "90s", file)
	}
	// --- a good update --------------------------------------------------
	put("/tmp/upd/lablog_1.1_arm64.deb", v11)
	put("/tmp/upd/lablog_1.1_arm64.deb.sig", v11+".sig")
	out, err := apply("/tmp/upd/lablog_1.1_arm64.deb")
	if err != nil || !strings.Contains(out, "installed lablog 1.1 (was 1.0) and it is healthy") {
		log, _ := os.ReadFile(c.path("/tmp/shim/lablog.log"))
		t.Fatalf("a good update: %v\n%s\nlablog's log:\n%s", err, out, log)
	}
	if s := c.status(); s != "install ok installed 1.1" {
		t.Errorf("after the good update dpkg says %q", s)
	}
	kept, _ := filepath.Glob(c.path("/var/lib/lablog/previous/*.deb"))
	if len(kept) != 1 || filepath.Base(kept[0]) != "lablog_1.1_arm64.deb" {
		t.Errorf("kept %v, want the 1.1 package alone", kept)
	}
	step("good update installed and healthy")

	// --- refused: changed after signing, and unsigned ---------------------
	put("/tmp/forged/lablog_1.2_arm64.deb", bad)
	put("/tmp/forged/lablog_1.2_arm64.deb.sig", v11+".sig")
	out, err = apply("/tmp/forged/lablog_1.2_arm64.deb")
	if err == nil || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "the file is not the one signed") {
		t.Errorf("a forged signature: %v\n%s", err, out)
	}
	put("/tmp/unsigned/lablog_1.2_arm64.deb", bad)
	out, err = apply("/tmp/unsigned/lablog_1.2_arm64.deb")
	if err == nil || !strings.Contains(out, "has no signature file lablog_1.2_arm64.deb.sig") {
		t.Errorf("an unsigned package: %v\n%s", err, out)
	}
	if s := c.status(); s != "install ok installed 1.1" {
		t.Errorf("after the refusals dpkg says %q", s)
	}
	step("forged and unsigned refused")

	// --- a bad update rolls back ------------------------------------------
	put("/tmp/upd/lablog_1.2_arm64.deb", bad)
	put("/tmp/upd/lablog_1.2_arm64.deb.sig", bad+".sig")
	out, err = c.run("/usr/bin/lablog", "update", "apply", "--timeout", "20s", "/tmp/upd/lablog_1.2_arm64.deb")
	// At once, not after the 20 s: the shim, as systemd, says the service
	// is stopped and nothing is starting it again.
	if err == nil || !strings.Contains(out, "ROLLED BACK: lablog 1.2 failed its health check: not recording (/healthz 200): stopped, and nothing starts it again") ||
		!strings.Contains(out, "rolled back to 1.1") {
		t.Errorf("a bad update: %v\n%s", err, out)
	}
	if s := c.status(); s != "install ok installed 1.1" {
		t.Errorf("after the rollback dpkg says %q", s)
	}
	if v := c.must("/usr/bin/lablog", "version"); v != "lablog debtest-1.1\n" {
		t.Errorf("after the rollback lablog is %q", v)
	}
	// The reason waits for the status page in the fault record, which
	// stays the service user's.
	faults, _ := os.ReadFile(c.path("/var/lib/lablog/faults.json"))
	for _, want := range []string{`"update_rolled_back"`, "lablog 1.2 failed its health check", `"update_refused"`} {
		if !strings.Contains(string(faults), want) {
			t.Errorf("faults.json lacks %q:\n%s", want, faults)
		}
	}
	c.wantMode("/var/lib/lablog/faults.json", false, 0o600, c.id("/etc/passwd", "lablog"), c.id("/etc/group", "lablog"))
	step("bad update rolled back")

	// --- the apt route ------------------------------------------------------
	c.run("systemctl", "stop", "lablog.service")
	c.must("dpkg", "--purge", "lablog")
	home, err := os.MkdirTemp("", "lablog-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run(); os.RemoveAll(home) })
	os.Chmod(home, 0o700)
	if out, err := exec.Command("gpg", "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key",
		"lablog test repo <repo@example.org>", "ed25519", "sign", "never").CombinedOutput(); err != nil {
		t.Fatalf("gpg: %v\n%s", err, out)
	}
	repo := c.path("/srv/apt")
	if err := aptrepo.Build(context.Background(), aptrepo.Options{Dir: repo, Debs: []string{v10, v11}, Key: "repo@example.org", GnupgHome: home}); err != nil {
		t.Fatal(err)
	}
	c.must("cp", "/srv/apt/"+aptrepo.KeyringName, "/usr/share/keyrings/"+aptrepo.KeyringName)
	// The repository alone: the root's own sources would need the network.
	c.write("/etc/apt/lablog-test.d/lablog.list", "deb [signed-by=/usr/share/keyrings/"+aptrepo.KeyringName+"] file:/srv/apt stable main\n", 0o644)
	aptGet := func(args ...string) (string, error) {
		return c.run(append([]string{"apt-get", "-o", "Dir::Etc::SourceList=/dev/null", "-o", "Dir::Etc::SourceParts=/etc/apt/lablog-test.d"}, args...)...)
	}
	if out, err := aptGet("update"); err != nil || strings.Contains(out, "W: ") || strings.Contains(out, "E: ") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := aptGet("install", "-y", "lablog"); err != nil {
		t.Fatalf("apt-get install lablog: %v\n%s", err, out)
	}
	if s := c.status(); s != "install ok installed 1.1" {
		t.Errorf("apt installed %q, want 1.1", s)
	}
	if out, err := aptGet("install", "-y", "--allow-downgrades", "lablog=1.0"); err != nil || c.status() != "install ok installed 1.0" {
		t.Errorf("apt-get install lablog=1.0 (the way back): %v %q\n%s", err, c.status(), out)
	}
	step("apt installed from the signed repository")
}
