package image

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Checks of the appliance's files that need no VM: run by go test ./...

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// need finds a tool; in CI a missing tool fails the test, elsewhere it skips.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI (apt-get install %s)", tool, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", tool, pkg)
	}
	return p
}

type modeLine struct {
	mode  os.FileMode
	owner string
	path  string
}

func readModes(t *testing.T) []modeLine {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "image/overlay.modes"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []modeLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		var m uint32
		if len(fields) != 3 || !regexp.MustCompile(`^0[0-7]{3}$`).MatchString(fields[0]) ||
			!regexp.MustCompile(`^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$`).MatchString(fields[1]) || !filepath.IsAbs(fields[2]) {
			t.Fatalf("overlay.modes:%d: want \"0MODE user:group /path\", got %q", n, line)
		}
		for _, c := range fields[0] {
			m = m*8 + uint32(c-'0')
		}
		out = append(out, modeLine{os.FileMode(m), fields[1], fields[2]})
	}
	return out
}

// Every overlay file is listed with a sane mode; executables are executable
// in the repository too (git keeps only that bit), and secrets are not
// world-readable.
func TestOverlayModes(t *testing.T) {
	root := filepath.Join(repoRoot(t), "rootfs-overlay")
	listed := map[string]modeLine{}
	for _, l := range readModes(t) {
		if _, dup := listed[l.path]; dup {
			t.Errorf("%s listed twice", l.path)
		}
		listed[l.path] = l
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(path, root+"/"))
		seen[rel] = true
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s: not a regular file (%s)", rel, info.Mode())
			return nil
		}
		l, ok := listed[rel]
		if !ok {
			t.Errorf("%s is not in image/overlay.modes", rel)
			return nil
		}
		if l.mode&0o002 != 0 {
			t.Errorf("%s: world-writable mode %04o", rel, l.mode)
		}
		repoExec := info.Mode()&0o100 != 0
		if wantExec := l.mode&0o100 != 0; repoExec != wantExec {
			t.Errorf("%s: executable in the repository %v, in overlay.modes %04o", rel, repoExec, l.mode)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(data, []byte("#!")) && l.mode&0o111 == 0 {
			t.Errorf("%s: a script with mode %04o", rel, l.mode)
		}
		if strings.HasPrefix(rel, "/etc/lablog/") && l.mode&0o007 != 0 {
			t.Errorf("%s: lablog's config must not be readable by others (%04o)", rel, l.mode)
		}
		if strings.HasPrefix(rel, "/etc/systemd/") && (l.mode != 0o644 || l.owner != "root:root") {
			t.Errorf("%s: systemd files are 0644 root:root, not %04o %s", rel, l.mode, l.owner)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range listed {
		if !seen[p] {
			t.Errorf("overlay.modes lists %s, which is not in rootfs-overlay/", p)
		}
	}
}

// shellScripts are the appliance's scripts: every file with a shell shebang
// under image/ and rootfs-overlay/.
func shellScripts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"image", "rootfs-overlay", "pi-gen-config"} {
		root := filepath.Join(repoRoot(t), dir)
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				if d != nil && d.IsDir() && (d.Name() == "files" || d.Name() == "build") {
					return filepath.SkipDir
				}
				return err
			}
			data, err := os.ReadFile(path)
			if err == nil && regexp.MustCompile(`^(#!\S*(/bash|/sh|env bash)\b|# shellcheck shell=)`).Match(data) {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}

func TestShellcheck(t *testing.T) {
	sc := need(t, "shellcheck", "shellcheck")
	scripts := shellScripts(t)
	if len(scripts) < 6 {
		t.Fatalf("found only %d scripts: %v", len(scripts), scripts)
	}
	args := append([]string{"--external-sources", "--severity=style"}, scripts...)
	cmd := exec.Command(sc, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	// The check is real: a script with a classic mistake is reported.
	bad := filepath.Join(t.TempDir(), "bad.sh")
	_ = os.WriteFile(bad, []byte("#!/bin/bash\nrm -rf $1/*\n"), 0o755)
	if out, err := exec.Command(sc, bad).CombinedOutput(); err == nil {
		t.Errorf("shellcheck accepted an unquoted rm -rf $1/*: %s", out)
	}
}

// Every unit of the overlay passes systemd-analyze verify without a word.
// Binaries that only exist in the image are stood in for by real files.
func TestUnitsVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze", "systemd")
	root := repoRoot(t)
	units, _ := filepath.Glob(filepath.Join(root, "rootfs-overlay/etc/systemd/system/*.service"))
	if len(units) < 3 {
		t.Fatalf("found %d units", len(units))
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exec1 := regexp.MustCompile(`(?m)^(Exec\w+=[-+@!:]*)(/\S+)`)
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		data = exec1.ReplaceAllFunc(data, func(m []byte) []byte {
			sub := exec1.FindSubmatch(m)
			bin := string(sub[2])
			if _, err := os.Stat(bin); err == nil {
				return m
			}
			if p := filepath.Join(root, "rootfs-overlay", bin); fileExists(p) {
				return append(sub[1], p...)
			}
			return append(sub[1], self...)
		})
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And it is a real check.
	bad := filepath.Join(dir, "bad.service")
	_ = os.WriteFile(bad, []byte("[Service]\nType=oneshott\nExecStart="+self+"\n"), 0o644)
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); !bytes.Contains(out, []byte("oneshott")) {
		t.Errorf("verify missed a bad Type=: %s", out)
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func TestNftablesRuleset(t *testing.T) {
	nft := need(t, "nft", "nftables")
	conf := filepath.Join(repoRoot(t), "rootfs-overlay/etc/nftables.conf")
	if out, err := exec.Command(nft, "-c", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("nft -c -f %s: %v\n%s", conf, err, out)
	}
	data, _ := os.ReadFile(conf)
	text := string(data)
	for _, want := range []string{"policy drop", `iifname != "lo" tcp dport 8888 drop`, "tcp dport 22 accept", "tcp dport 80 accept", "udp dport 5353 accept"} {
		if !strings.Contains(text, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	// The 8888 drop must come before anything that accepts on other
	// interfaces.
	if strings.Index(text, "dport 8888 drop") > strings.Index(text, "tcp dport 22 accept") {
		t.Error("the 8888 drop comes after an accept rule")
	}
	bad := filepath.Join(t.TempDir(), "bad.nft")
	_ = os.WriteFile(bad, []byte("table inet x { chain y { type filter hook input priority filter; policy dorp; } }\n"), 0o644)
	if _, err := exec.Command(nft, "-c", "-f", bad).CombinedOutput(); err == nil {
		t.Error("nft -c accepted a bad ruleset")
	}
}

// The sudoers drop-in parses, with the mode sudo insists on.
func TestSudoers(t *testing.T) {
	visudo := need(t, "visudo", "sudo")
	f := filepath.Join(repoRoot(t), "rootfs-overlay/etc/sudoers.d/lablog-archive")
	if out, err := exec.Command(visudo, "-c", "-q", "-f", f).CombinedOutput(); err != nil {
		t.Errorf("visudo -c %s: %v\n%s", f, err, out)
	}
	for _, l := range readModes(t) {
		if strings.HasPrefix(l.path, "/etc/sudoers.d/") && (l.mode != 0o440 || l.owner != "root:root") {
			t.Errorf("%s: sudo wants 0440 root:root, not %04o %s", l.path, l.mode, l.owner)
		}
	}
}

// pi-gen's config, as pi-gen's build.sh sources it, asks for what the issue
// and our stage need; make image refuses to run without a relay binary.
func TestPiGenConfig(t *testing.T) {
	root := repoRoot(t)
	script := `set -eu; . "$1"; printf '%s\n' "$IMG_NAME" "$ARCH" "$TARGET_HOSTNAME" "$FIRST_USER_NAME" \
		"$DISABLE_FIRST_BOOT_USER_RENAME" "$ENABLE_SSH" "$PUBKEY_ONLY_SSH" "$DEPLOY_COMPRESSION" "$STAGE_LIST" "${FIRST_USER_PASS:-unset}" "$ENABLE_CLOUD_INIT"`
	out, err := exec.Command("bash", "-c", script, "bash", filepath.Join(root, "pi-gen-config/config")).CombinedOutput()
	if err != nil {
		t.Fatalf("sourcing the config: %v\n%s", err, out)
	}
	// ENABLE_CLOUD_INIT=1: stage2 puts cloud-init's seed files on the boot
	// partition, for Raspberry Pi Imager's settings.
	want := "lablog\narm64\nlablog\nlabadmin\n1\n1\n1\nxz\nstage0 stage1 stage2 stage-lablog\nunset\n1\n"
	if string(out) != want {
		t.Errorf("config gives\n%s\nwant\n%s", out, want)
	}
	// The emulated boot logs in as pi-gen's first user (the image test's
	// pi-gen run creates it from this config).
	vm, _ := os.ReadFile(filepath.Join(root, "internal/e2e/image/vm_test.go"))
	if !strings.Contains(string(vm), `"labadmin@127.0.0.1"`) {
		t.Error("the emulated boot does not log in as pi-gen's FIRST_USER_NAME labadmin")
	}
	cmd := exec.Command(filepath.Join(root, "image/build-image.sh"))
	cmd.Env = append(os.Environ(), "RELAY_HOST_BIN=", "RELAY_SRC=", "RELAY_TARBALL=/nonexistent/relay-src.tar.gz")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "RELAY_HOST_BIN") || !strings.Contains(string(out), "/nonexistent/relay-src.tar.gz") {
		t.Errorf("make image without a relay: %v\n%s", err, out)
	}
}

// unitDeps returns the units a unit file lists under key (in every line of
// it, as systemd merges them).
func unitDeps(unit, key string) []string {
	var out []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			out = append(out, strings.Fields(v)...)
		}
	}
	return out
}

// The relay host's API hands out tokens to anyone who reaches port 8888, and
// it listens on every interface: it must run only with the ruleset loaded.
// Requires= (or BindsTo=) keeps it down when nftables.service fails or is
// masked, After= makes it wait for the ruleset; After= alone (a failed
// ruleset leaves the relay host open) or Wants= are not enough. The boot in
// QEMU (TestImage) checks the behaviour.
func TestRelayHostUnitNeedsFirewall(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "rootfs-overlay/etc/systemd/system/relay-host.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	hard := append(unitDeps(unit, "Requires"), unitDeps(unit, "BindsTo")...)
	if !slices.Contains(hard, "nftables.service") {
		t.Errorf("relay-host.service neither Requires= nor BindsTo= nftables.service (has %v)", hard)
	}
	if !slices.Contains(unitDeps(unit, "After"), "nftables.service") {
		t.Errorf("relay-host.service is not After=nftables.service (has %v)", unitDeps(unit, "After"))
	}
	// The image always ships the relay: a missing binary must fail the unit,
	// not skip it quietly.
	if strings.Contains(unit, "ConditionFileIsExecutable=") {
		t.Error("relay-host.service skips itself without its binary")
	}
	if !strings.Contains(unit, "\nExecStart=/usr/local/bin/relay-host host\n") || !strings.Contains(unit, "\nEnvironment=VW_PORT=8888\n") {
		t.Errorf("relay-host.service does not run `relay host` on 8888:\n%s", unit)
	}
	// The parser is real: the unit as it was before (ordered, not required).
	old := "[Unit]\nWants=network-online.target\nAfter=network-online.target nftables.service\n"
	if slices.Contains(unitDeps(old, "Requires"), "nftables.service") || !slices.Contains(unitDeps(old, "After"), "nftables.service") {
		t.Error("unitDeps misreads a unit")
	}
}

// image/relay-arm64.sh, which make image and make image-test use: a prebuilt
// binary must be arm64, a missing tarball is an error, and a tarball is
// built once: the second time its build comes from the cache, keyed by the
// tarball's content (GO=false: no build may run).
func TestRelayArm64(t *testing.T) {
	root := repoRoot(t)
	host, arm64 := distBinary(t, "lablog"), distBinary(t, "lablog-linux-arm64")
	script := filepath.Join(root, "image/relay-arm64.sh")
	cache := t.TempDir()
	run := func(env ...string) (string, string, error) {
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), "RELAY_HOST_BIN=", "RELAY_SRC=", "RELAY_TARBALL=", "GO=false", "RELAY_CACHE="+cache)
		cmd.Env = append(cmd.Env, env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if out, msg, err := run("RELAY_HOST_BIN=" + host); err == nil || !strings.Contains(msg, "not a linux/arm64") {
		t.Errorf("an amd64 RELAY_HOST_BIN: %v %q %s", err, out, msg)
	}
	if out, _, err := run("RELAY_HOST_BIN=" + arm64); err != nil || out != arm64+"\n" {
		t.Errorf("an arm64 RELAY_HOST_BIN: %v %q", err, out)
	}
	if out, msg, err := run("RELAY_TARBALL=/nonexistent.tar.gz"); err == nil || out != "" || !strings.Contains(msg, "does not exist") {
		t.Errorf("a missing tarball: %v %q %s", err, out, msg)
	}
	tarball := filepath.Join(t.TempDir(), "relay-src-test.tar.gz")
	if err := os.WriteFile(tarball, []byte("not built: the cache answers"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not in the cache: the build (GO=false) fails.
	if out, msg, err := run("RELAY_TARBALL=" + tarball); err == nil || out != "" {
		t.Errorf("an uncached tarball with GO=false: %v %q %s", err, out, msg)
	}
	sum, err := exec.Command("sha256sum", tarball).Output()
	if err != nil {
		t.Fatal(err)
	}
	cached := filepath.Join(cache, "relay-arm64-"+string(sum[:16]))
	data, _ := os.ReadFile(arm64)
	if err := os.WriteFile(cached, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, msg, err := run("RELAY_TARBALL=" + tarball); err != nil || out != cached+"\n" {
		t.Errorf("a cached tarball build: %v %q %s", err, out, msg)
	}
	// Another content, another key.
	if err := os.WriteFile(tarball, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run("RELAY_TARBALL=" + tarball); err == nil || out == cached+"\n" {
		t.Errorf("a changed tarball came from the cache: %v %q", err, out)
	}
}

// make image against a stand-in pi-gen: our stage lands in the tree with
// everything it installs, and pi-gen gets a config it accepts.
func TestBuildImageAssemblesStage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("build-image.sh runs pi-gen's build.sh only as root")
	}
	root := repoRoot(t)
	host, arm64 := distBinary(t, "lablog"), distBinary(t, "lablog-linux-arm64")
	deb := distDeb(t, "arm64")
	pigen := t.TempDir()
	_ = os.MkdirAll(filepath.Join(pigen, "stage2/04-cloud-init"), 0o755)
	// A SKIP an older build left there: stage2's cloud-init sub-stage must run
	// (Raspberry Pi Imager's settings).
	_ = os.WriteFile(filepath.Join(pigen, "stage2/04-cloud-init/SKIP"), nil, 0o644)
	// The stand-in checks what pi-gen's build.sh would and "exports" an image.
	fake := `#!/bin/bash
set -eu
. ./config
[ -n "$FIRST_USER_PASS" ] && [ -n "$PUBKEY_SSH_FIRST_USER" ] || { echo "pi-gen would refuse"; exit 1; }
for f in stage-lablog/prerun.sh stage-lablog/EXPORT_IMAGE stage-lablog/00-packages/00-packages-nr \
	stage-lablog/01-lablog/00-run.sh stage-lablog/01-lablog/01-run-chroot.sh \
	stage-lablog/01-lablog/files/lablog.deb stage-lablog/01-lablog/files/relay-host \
	stage-lablog/01-lablog/files/overlay.modes \
	stage-lablog/01-lablog/files/overlay/etc/nftables.conf stage-lablog/01-lablog/files/site/lablog.yaml stage2/SKIP_IMAGES \
	stage-lablog/01-lablog/files/overlay/etc/cloud/cloud.cfg.d/zz-lablog.cfg; do
	[ -e "$f" ] || { echo "missing $f"; exit 1; }
done
[ ! -e stage2/04-cloud-init/SKIP ] || { echo "stage2's cloud-init sub-stage is skipped"; exit 1; }
[ "$ENABLE_CLOUD_INIT" = 1 ] || { echo "ENABLE_CLOUD_INIT=$ENABLE_CLOUD_INIT"; exit 1; }
[ -x stage-lablog/prerun.sh ] && [ -x stage-lablog/01-lablog/00-run.sh ] || { echo "scripts not executable"; exit 1; }
# pi-gen's default deploy/ is the folder build-docker.sh copies out (issue 16).
! grep -q DEPLOY_DIR config || { echo "config sets DEPLOY_DIR"; exit 1; }
mkdir -p deploy && echo image | xz >deploy/image_2026-01-01-lablog.img.xz
`
	if err := os.WriteFile(filepath.Join(pigen, "build.sh"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	deploy := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "image/build-image.sh"))
	cmd.Env = append(os.Environ(), "PIGEN_DIR="+pigen, "PIGEN_DOCKER=0", "DEPLOY="+deploy,
		"RELAY_HOST_BIN="+arm64, "SITE="+filepath.Join(root, "image/test/lablog"),
		"LABLOG_DEB="+deb, "LABLOG_HOST="+host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(deploy, "image_2026-01-01-lablog.img.xz")); err != nil {
		t.Errorf("no image delivered: %v\n%s", err, out)
	}
	// lablog comes as the very package make deb built.
	staged, _ := os.ReadFile(filepath.Join(pigen, "stage-lablog/01-lablog/files/lablog.deb"))
	if want, _ := os.ReadFile(deb); len(want) == 0 || !bytes.Equal(staged, want) {
		t.Errorf("the stage's lablog.deb is not %s", deb)
	}
	// Any other file is refused as lablog's package.
	cmd = exec.Command(filepath.Join(root, "image/assemble-stage.sh"))
	cmd.Env = append(os.Environ(), "OUT="+t.TempDir()+"/stage", "RELAY_HOST_BIN="+arm64, "LABLOG_DEB="+arm64, "LABLOG_HOST="+host)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not lablog's arm64 package") {
		t.Errorf("assemble-stage took a binary as lablog's package: %v\n%s", err, out)
	}
	cfg, _ := os.ReadFile(filepath.Join(pigen, "config"))
	if strings.Contains(string(cfg), "FIRST_USER_PASS=\n") || !strings.Contains(string(cfg), "STAGE_LIST=") {
		t.Errorf("pi-gen config:\n%s", cfg)
	}
}
