package service

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden unit file")

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// defaultUnit is the unit of the default configuration (wire's
// TestServiceUnitOfDefaultConfig checks that it is).
func defaultUnit() Unit {
	return Unit{
		Exec:       "/usr/local/bin/lablog",
		Config:     "/etc/lablog/lablog.yaml",
		BufferDir:  "/var/lib/lablog",
		ArchiveDir: "/media/lablog",
		LEDDir:     "/sys/class/leds/ACT",
	}
}

// The unit for the default configuration is the one the image ships.
func TestRenderGolden(t *testing.T) {
	got, err := defaultUnit().Render()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "lablog.service")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered unit differs from %s (go test -run TestRenderGolden -update to accept):\n%s", golden, got)
	}
}

// directives parses a unit into section -> key -> values.
func directives(unit []byte) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			out[section] = map[string][]string{}
		default:
			k, v, _ := strings.Cut(line, "=")
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestUnitDirectives(t *testing.T) {
	u := defaultUnit()
	u.ArchiveDir = "/mnt/usb drive"
	if _, err := u.Render(); err == nil {
		t.Error("a path with a space rendered; want an error")
	}
	u = defaultUnit()
	u.ArchiveDir = "/srv/lablog-archive"
	unit, err := u.Render()
	if err != nil {
		t.Fatal(err)
	}
	d := directives(unit)
	s := d["Service"]
	for key, want := range map[string]string{
		"Type": "notify", "Restart": "on-failure", "RestartSec": "2", "WatchdogSec": "30", "User": "lablog",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"StateDirectory": "lablog", "ReadWritePaths": "-/var/lib/lablog -/srv/lablog-archive",
		"ExecStart": "/usr/local/bin/lablog run --config /etc/lablog/lablog.yaml",
	} {
		if got := s[key]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"After", "Wants"} {
		v := strings.Fields(strings.Join(d["Unit"][key], " "))
		if !slices.Contains(v, "relay-host.service") || !slices.Contains(v, `srv-lablog\x2darchive.mount`) {
			t.Errorf("[Unit] %s = %v, want the relay host and the archive's mount unit", key, v)
		}
	}
	if _, ok := d["Unit"]["RequiresMountsFor"]; ok {
		t.Error("RequiresMountsFor would stop lablog from starting without the drive")
	}
	if got := d["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("WantedBy = %v", got)
	}
	u.LEDDir = ""
	unit, _ = u.Render()
	if _, ok := directives(unit)["Service"]["ExecStartPre"]; ok {
		t.Error("no LED configured, yet the unit touches one")
	}
}

// inCI is true in CI, where missing tools are failures, not skips.
func inCI() bool { return os.Getenv("CI") != "" }

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if inCI() {
			t.Fatalf("%s is missing in CI (apt-get install systemd)", tool)
		}
		t.Skipf("%s not installed", tool)
	}
	return p
}

// systemd itself accepts the unit, with no warning at all.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	// verify checks that ExecStart= is executable: point it at a real file.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, led := range []string{"/sys/class/leds/ACT", ""} {
		u := defaultUnit()
		u.Exec, u.LEDDir = exe, led
		unit, err := u.Render()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), Name+".service")
		if err := os.WriteFile(path, unit, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify (led %q): %v\n%s\n%s", led, err, out, unit)
		}
	}
	// And the check is real: a bad setting is reported.
	bad := filepath.Join(t.TempDir(), Name+".service")
	unit, _ := defaultUnit().Render()
	unit = bytes.Replace(unit, []byte("Type=notify"), []byte("Type=notifyy"), 1)
	unit = bytes.Replace(unit, []byte("/usr/local/bin/lablog"), []byte(exe), 1)
	_ = os.WriteFile(bad, unit, 0o644)
	if out, _ := exec.Command(analyze, "verify", bad).CombinedOutput(); !strings.Contains(string(out), "notifyy") {
		t.Errorf("verify did not notice a bad Type=: %s", out)
	}
}

// exposure rates a unit with systemd-analyze security --offline (0 safest,
// 10 unsafe), as systemd would rate the installed unit.
func exposure(t *testing.T, analyze string, unit []byte) float64 {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, Name+".service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "security", "--offline=true", "--no-pager", path)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for ` + Name + `\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no overall exposure:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return score
}

// systemd rates the unit's sandbox OK (<= 3.0; it was 6.2 MEDIUM before the
// sandbox block), with and without an LED.
func TestSystemdAnalyzeSecurity(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	const ok = 3.0
	for _, led := range []string{"/sys/class/leds/ACT", ""} {
		u := defaultUnit()
		u.LEDDir = led
		unit, err := u.Render()
		if err != nil {
			t.Fatal(err)
		}
		if score := exposure(t, analyze, unit); score > ok {
			t.Errorf("systemd-analyze security (led %q): exposure %.1f, want <= %.1f\n%s", led, score, ok, unit)
		} else {
			t.Logf("exposure (led %q): %.1f", led, score)
		}
	}
	// The check is real: without the sandbox block the unit is MEDIUM.
	unit, _ := defaultUnit().Render()
	start, end := bytes.Index(unit, []byte("PrivateDevices=")), bytes.Index(unit, []byte("\n[Install]"))
	if start < 0 || end < start {
		t.Fatalf("no sandbox block in the unit:\n%s", unit)
	}
	bare := append(slices.Clone(unit[:start]), unit[end:]...)
	if score := exposure(t, analyze, bare); score <= ok {
		t.Errorf("the unit without its sandbox rates %.1f, want > %.1f:\n%s", score, ok, bare)
	}
}

func TestMountUnitMatchesSystemdEscape(t *testing.T) {
	paths := []string{"/media/lablog", "/srv/lablog-archive", "/mnt/usb/data_1", "/media/.hidden/x", "/", "/media/lablog/"}
	for _, p := range paths {
		want := map[string]string{
			"/media/lablog": "media-lablog.mount", "/srv/lablog-archive": `srv-lablog\x2darchive.mount`,
			"/mnt/usb/data_1": "mnt-usb-data_1.mount", "/media/.hidden/x": "media-.hidden-x.mount", "/": "-.mount",
			"/media/lablog/": "media-lablog.mount",
		}[p]
		if got := MountUnit(p); got != want {
			t.Errorf("MountUnit(%q) = %q, want %q", p, got, want)
		}
	}
	escape, err := exec.LookPath("systemd-escape")
	if err != nil {
		return
	}
	for _, p := range paths {
		out, err := exec.Command(escape, "--path", "--suffix=mount", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := MountUnit(p), strings.TrimSpace(string(out)); got != want {
			t.Errorf("MountUnit(%q) = %q, systemd-escape says %q", p, got, want)
		}
	}
}

// recorder is a Runner that records calls; fail names commands that fail.
type recorder struct {
	calls []string
	fail  map[string]bool
}

func (r *recorder) run(_ context.Context, name string, args ...string) ([]byte, error) {
	call := strings.Join(append([]string{name}, args...), " ")
	r.calls = append(r.calls, call)
	if r.fail[name] {
		return nil, fmt.Errorf("%s: exit status 2", name)
	}
	return nil, nil
}

func TestInstallUninstallLive(t *testing.T) {
	unitDir := t.TempDir()
	rec := &recorder{fail: map[string]bool{"getent": true}}
	m := &Manager{UnitDir: unitDir, Run: rec.run, Logger: quiet()}
	ctx := context.Background()
	if got := m.UnitPath(); got != filepath.Join(unitDir, "lablog.service") {
		t.Fatalf("UnitPath = %s", got)
	}
	if err := m.Install(ctx, defaultUnit()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"getent passwd lablog",
		"useradd --system --user-group --no-create-home --home-dir /var/lib/lablog --shell /usr/sbin/nologin lablog",
		"systemctl daemon-reload",
		"systemctl enable lablog.service",
	}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("install ran\n%q\nwant\n%q", rec.calls, want)
	}
	golden, _ := defaultUnit().Render()
	if got, err := os.ReadFile(m.UnitPath()); err != nil || !bytes.Equal(got, golden) {
		t.Errorf("installed unit differs: %v", err)
	}

	// A reinstall with the user present replaces the unit.
	rec.calls, rec.fail = nil, nil
	u := defaultUnit()
	u.ArchiveDir = "/srv/archive"
	if err := m.Install(ctx, u); err != nil {
		t.Fatal(err)
	}
	if want := []string{"getent passwd lablog", "systemctl daemon-reload", "systemctl enable lablog.service"}; !slices.Equal(rec.calls, want) {
		t.Errorf("reinstall ran %q, want %q", rec.calls, want)
	}
	if got, _ := os.ReadFile(m.UnitPath()); !bytes.Contains(got, []byte("-/srv/archive")) {
		t.Error("reinstall did not replace the unit")
	}

	rec.calls = nil
	if err := m.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"systemctl disable --now lablog.service", "systemctl daemon-reload"}; !slices.Equal(rec.calls, want) {
		t.Errorf("uninstall ran %q, want %q", rec.calls, want)
	}
	if _, err := os.Stat(m.UnitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Error("unit still there after uninstall")
	}
	if err := m.Uninstall(ctx); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second uninstall: %v, want ErrNotInstalled", err)
	}
}

func TestInstallFailuresAreReported(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{fail: map[string]bool{"getent": true, "useradd": true}}
	m := &Manager{UnitDir: t.TempDir(), Run: rec.run, Logger: quiet()}
	if err := m.Install(ctx, defaultUnit()); err == nil || !strings.Contains(err.Error(), "create user lablog") {
		t.Errorf("useradd failing: %v", err)
	}
	if _, err := os.Stat(m.UnitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Error("unit written although the user could not be created")
	}
	rec.fail = map[string]bool{"systemctl": true}
	if err := m.Install(ctx, defaultUnit()); err == nil || !strings.Contains(err.Error(), "systemctl") {
		t.Errorf("systemctl failing: %v", err)
	}
}

// fakeBin puts scripts named like system tools first on PATH; each logs its
// name and arguments to the returned file.
func fakeBin(t *testing.T, scripts map[string]string) (logPath string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "calls.log")
	for name, body := range scripts {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %s\n%s\n", name, logPath, body)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logPath
}

func calls(t *testing.T, logPath string) []string {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// Installing into an image's root uses the tools offline: useradd --root,
// systemctl --root, no daemon-reload, nothing started.
func TestInstallIntoImageRoot(t *testing.T) {
	logPath := fakeBin(t, map[string]string{"systemctl": "exit 0", "useradd": "exit 0", "getent": "exit 1"})
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644)
	m := &Manager{Root: root, Logger: quiet()}
	ctx := context.Background()
	if err := m.Install(ctx, defaultUnit()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"useradd --root " + root + " --system --user-group --no-create-home --home-dir /var/lib/lablog --shell /usr/sbin/nologin lablog",
		"systemctl --root=" + root + " enable lablog.service",
	}
	if got := calls(t, logPath); !slices.Equal(got, want) {
		t.Errorf("ran\n%q\nwant\n%q", got, want)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/lablog.service")); err != nil {
		t.Errorf("unit not in the image: %v", err)
	}
	// With the user already in the image, no useradd.
	_ = os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("lablog:x:999:999::/var/lib/lablog:/usr/sbin/nologin\n"), 0o644)
	_ = os.Remove(logPath)
	if err := m.Install(ctx, defaultUnit()); err != nil {
		t.Fatal(err)
	}
	if got := calls(t, logPath); len(got) != 1 || !strings.HasPrefix(got[0], "systemctl --root=") {
		t.Errorf("second install ran %q", got)
	}
	_ = os.Remove(logPath)
	if err := m.Uninstall(ctx); err != nil {
		t.Fatal(err)
	}
	if got := calls(t, logPath); !slices.Equal(got, []string{"systemctl --root=" + root + " disable lablog.service"}) {
		t.Errorf("uninstall ran %q", got)
	}
}

// Start, stop and status go through kardianos/service, which runs the
// systemctl it finds on PATH.
func TestControl(t *testing.T) {
	logPath := fakeBin(t, map[string]string{"systemctl": `
case "$1" in
is-active) cat "$(dirname "$0")/state" ;;
list-unit-files) [ -f "$(dirname "$0")/installed" ] && echo "lablog.service enabled" ;;
esac
exit 0`})
	bin := filepath.Dir(logPath)
	c, err := NewControl()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := calls(t, logPath); !slices.Equal(got, []string{"systemctl start lablog.service", "systemctl stop lablog.service"}) {
		t.Errorf("ran %q", got)
	}
	for _, tc := range []struct{ state, installed, want string }{
		{"active", "", "running"},
		{"inactive", "yes", "stopped"},
		{"inactive", "", "not installed"},
	} {
		_ = os.WriteFile(filepath.Join(bin, "state"), []byte(tc.state+"\n"), 0o644)
		os.Remove(filepath.Join(bin, "installed"))
		if tc.installed != "" {
			_ = os.WriteFile(filepath.Join(bin, "installed"), nil, 0o644)
		}
		got, err := c.Status()
		if err != nil || got != tc.want {
			t.Errorf("is-active %s, installed %q: Status = %q, %v; want %q", tc.state, tc.installed, got, err, tc.want)
		}
	}
}
