package debpkg

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/service"
	"github.com/practable/lablog/internal/ops/update"
	"github.com/practable/lablog/internal/record/buffer"
)

// inCI is true in CI, where a missing tool is a failure, not a skip.
func inCI() bool { return os.Getenv("CI") != "" }

func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if inCI() {
			t.Fatalf("%s is missing in CI (apt-get install %s)", tool, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", tool, pkg)
	}
	return p
}

func scriptVars() any {
	return struct {
		BufferFormat  int
		User, UserAdd string
	}{buffer.FormatVersion, service.DefaultUser, strings.Join(service.UserAddArgs(service.DefaultUser), " ")}
}

// Every maintainer script renders, is POSIX sh by dash and shellcheck, and
// the postinst makes the user with the very arguments of `lablog install`.
func TestScripts(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"preinst", "postinst", "prerm", "postrm"} {
		text, err := Script(name, scriptVars())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(text), "#!/bin/sh\n") || !strings.Contains(string(text), "\nset -e\n") {
			t.Errorf("%s: want #!/bin/sh and set -e", name)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, text, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", name, err, out)
		}
	}
	post, _ := os.ReadFile(filepath.Join(dir, "postinst"))
	want := "useradd " + strings.Join(service.UserAddArgs("lablog"), " ") + "\n"
	if !strings.Contains(string(post), want) {
		t.Errorf("postinst does not make the user as lablog install does (%q):\n%s", want, post)
	}
	pre, _ := os.ReadFile(filepath.Join(dir, "preinst"))
	if !strings.Contains(string(pre), "new_format="+string(rune('0'+buffer.FormatVersion))+"\n") {
		t.Errorf("preinst does not guard buffer format %d:\n%s", buffer.FormatVersion, pre)
	}
	shellcheck := need(t, "shellcheck", "shellcheck")
	args := append([]string{"--shell=sh"}, filepath.Join(dir, "preinst"), filepath.Join(dir, "postinst"),
		filepath.Join(dir, "prerm"), filepath.Join(dir, "postrm"))
	if out, err := exec.Command(shellcheck, args...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// repoRoot is the lablog repository (this module lives in tools/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "lablog")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// builds caches the lablog binaries the tests package, one per
// architecture and version, built as the Makefile builds them.
var builds struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

func buildLablog(t *testing.T, goarch, version string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	key := goarch + "/" + version
	if p, ok := builds.paths[key]; ok {
		return p
	}
	if builds.paths == nil {
		dir, err := os.MkdirTemp("", "lablog-debpkg-test-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.paths = dir, map[string]string{}
	}
	out := filepath.Join(builds.dir, "lablog-"+goarch+"-"+version)
	cmd := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/practable/lablog/internal/platform/version.Version="+version,
		"-o", out, "./cmd/lablog")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build lablog for %s: %v\n%s", goarch, err, b)
	}
	builds.paths[key] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// packages builds lablog packages of version deb from lablog binaries of
// version built.
func buildPackage(t *testing.T, arch, deb, built string, bufferFormat int, out string) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the packages are rendered by the amd64 lablog binary")
	}
	goarch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[arch]
	spec := Spec{
		Arch: arch, Version: deb, Binary: buildLablog(t, goarch, built), Host: buildLablog(t, "amd64", built),
		Readme: filepath.Join(repoRoot(t), "README.md"), Maintainer: "lablog tests <lablog-tests@example.org>",
		Date: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), BufferFormat: bufferFormat, Out: out,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Build refuses a binary of another architecture, and binaries of two
// builds.
func TestBuildChecks(t *testing.T) {
	out := t.TempDir()
	amd64 := buildLablog(t, "amd64", "debtest-1.0")
	base := Spec{Arch: "arm64", Version: "1.0", Binary: amd64, Host: amd64, Readme: filepath.Join(repoRoot(t), "README.md"),
		Maintainer: "t <t@example.org>", Out: out}
	if _, err := Build(context.Background(), base); err == nil || !strings.Contains(err.Error(), "not arm64") {
		t.Errorf("an amd64 binary packaged as arm64: %v", err)
	}
	other := base
	other.Arch, other.Host = "amd64", buildLablog(t, "amd64", "debtest-1.1")
	if _, err := Build(context.Background(), other); err == nil || !strings.Contains(err.Error(), "not one build") {
		t.Errorf("binaries of two builds packaged together: %v", err)
	}
	bad := base
	bad.Arch, bad.Version = "amd64", "1.0-dirty"
	if _, err := Build(context.Background(), bad); err == nil {
		t.Error("a version with a hyphen was accepted")
	}
}

// lintian finds no error in either package (the warnings are explained in
// docs/appliance.md, "Install on an existing Raspberry Pi OS or Debian/Ubuntu server"):
// those of make deb in LABLOG_DEB_DIR (make deb-test), else packages built
// here.
func TestLintian(t *testing.T) {
	t.Parallel() // lintian (perl) and the chroot test (qemu) share the cores well
	lintian := need(t, "lintian", "lintian")
	out := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		var deb string
		if dir := os.Getenv("LABLOG_DEB_DIR"); dir != "" {
			found, _ := filepath.Glob(filepath.Join(dir, "lablog_*_"+arch+".deb"))
			if len(found) != 1 {
				t.Fatalf("LABLOG_DEB_DIR=%s: want one lablog_*_%s.deb (make deb), found %v", dir, arch, found)
			}
			deb = found[0]
		} else {
			deb = buildPackage(t, arch, "1.0+git3.gabc1234", "debtest-1.0", 0, out)
		}
		b, err := exec.Command(lintian, "--fail-on", "error", deb).CombinedOutput()
		t.Logf("lintian %s:\n%s", filepath.Base(deb), b)
		if err != nil {
			t.Errorf("lintian %s: %v", filepath.Base(deb), err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "E: ") {
				t.Errorf("lintian error: %s", line)
			}
		}
	}
}

// The package states its licence machine-readably (DEP-5, SPDX names) and
// its maintainer is the one asked for.
func TestLicenceAndMaintainer(t *testing.T) {
	dpkgDeb := need(t, "dpkg-deb", "dpkg")
	deb := buildPackage(t, "amd64", "1.0", "debtest-1.0", 0, t.TempDir())
	out, err := exec.Command(dpkgDeb, "-f", deb, "Maintainer").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "lablog tests <lablog-tests@example.org>" {
		t.Errorf("Maintainer = %q (%v)", out, err)
	}
	dir := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	text, err := os.ReadFile(filepath.Join(dir, docDir, "copyright"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
		"SPDX-License-Identifier: Apache-2.0", "\nFiles: *\n", "\nLicense: Apache-2.0\n",
		"/usr/share/common-licenses/Apache-2.0", "https://github.com/practable/relay"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the copyright file lacks %q", want)
		}
	}
	// The repository's LICENSE is the text the copyright file points to.
	lic, err := os.ReadFile(filepath.Join(repoRoot(t), "LICENSE"))
	if err != nil || !strings.Contains(string(lic), "Apache License\n                           Version 2.0, January 2004") {
		t.Errorf("LICENSE is not the Apache License 2.0: %v", err)
	}
}

// Public update keys given to the builder are in the package, where lablog
// update looks; anything else named as one is refused.
func TestUpdateKeysPackaged(t *testing.T) {
	dpkgDeb := need(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	pub, priv, err := update.GenerateKey("fleet")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "fleet.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "secret.pub"), priv, 0o644)
	spec := func(keys ...string) Spec {
		return Spec{Arch: "amd64", Version: "1.0", Binary: buildLablog(t, "amd64", "debtest-1.0"), Host: buildLablog(t, "amd64", "debtest-1.0"),
			Readme: filepath.Join(repoRoot(t), "README.md"), Maintainer: "t <t@example.org>", UpdateKeys: keys, Out: dir}
	}
	if _, err := Build(context.Background(), spec(filepath.Join(dir, "secret.pub"))); err == nil || !strings.Contains(err.Error(), "secret.pub") {
		t.Errorf("a private key packaged as a public one: %v", err)
	}
	deb, err := Build(context.Background(), spec(filepath.Join(dir, "fleet.pub")))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	keys, err := update.LoadKeys(filepath.Join(root, update.KeyDirs[0]))
	if err != nil || len(keys) != 1 || keys[0].From != filepath.Join(root, update.KeyDirs[0], "fleet.pub") {
		t.Errorf("packaged keys: %v %v", keys, err)
	}
}
