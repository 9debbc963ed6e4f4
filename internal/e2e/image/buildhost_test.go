package image

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docHostPackages reads docs/appliance.md's build-host package lists: "- Debian N,
// ROUTE: `apt-get install --no-install-recommends P...`[, then `CMD`]".
func docHostPackages(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "appliance.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^- Debian (\\d+), (native|Docker): `apt-get install --no-install-recommends ([^`]+)`")
	lists := map[string][]string{}
	for _, m := range re.FindAllSubmatch(data, -1) {
		lists["debian"+string(m[1])+"-"+string(m[2])] = strings.Fields(string(m[3]))
	}
	for _, key := range []string{"debian12-native", "debian13-native", "debian12-Docker", "debian13-Docker"} {
		if len(lists[key]) == 0 {
			t.Fatalf("docs/appliance.md has no build-host package list %s", key)
		}
	}
	return lists
}

func debianRelease(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Skip("no /etc/os-release")
	}
	var id, version string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	if id != "debian" || (version != "12" && version != "13") {
		t.Skipf("the lists of docs/appliance.md are for Debian 12 and 13; this is %s %s", id, version)
	}
	return version
}

// sandboxPath makes a folder holding only the programs of the given Debian
// packages and of the essential ones (always installed), as links.
func sandboxPath(t *testing.T, pkgs []string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package} ${Essential}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Clone(pkgs)
	for _, line := range strings.Split(string(out), "\n") {
		if name, ess, _ := strings.Cut(line, " "); ess == "yes" {
			all = append(all, strings.SplitN(name, ":", 2)[0])
		}
	}
	dir := t.TempDir()
	for _, p := range all {
		files, err := exec.Command("dpkg", "-L", p).Output()
		if err != nil {
			t.Fatalf("dpkg -L %s: %v", p, err)
		}
		for _, f := range strings.Split(string(files), "\n") {
			if !regexp.MustCompile(`^/(usr/)?s?bin/[^/]+$`).MatchString(f) {
				continue
			}
			if st, err := os.Stat(f); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				continue
			}
			_ = os.Symlink(f, filepath.Join(dir, filepath.Base(f)))
		}
	}
	return dir
}

// The build-host packages of docs/appliance.md for this Debian release pass pi-gen's own
// dependencies_check (with nothing else on PATH but the essential packages)
// and arch-test runs arm64 programs; without the package that provides
// qemu-arm the check fails, as issue 16 found with qemu-user-static alone.
// The Docker route's list gives a static qemu-aarch64 (build-docker.sh
// registers it with binfmt_misc), on Debian 12 only after docs/appliance.md's link.
func TestBuildHostPackages(t *testing.T) {
	lists := docHostPackages(t)
	release := debianRelease(t)
	native := lists["debian"+release+"-native"]
	docker := slices.DeleteFunc(slices.Clone(lists["debian"+release+"-Docker"]), func(p string) bool { return p == "docker.io" })
	var missing []string
	for _, p := range append(slices.Clone(native), docker...) {
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status}", p).Output(); err != nil || string(out) != "installed" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("the build-host packages of docs/appliance.md not installed: %v (make deps)", missing)
		}
		t.Skipf("the build-host packages of docs/appliance.md not installed: %v", missing)
	}
	needArm64Binfmt(t)
	pigen := piGenTree(t)
	check := func(pkgs []string) (string, error) {
		cmd := exec.Command("/bin/bash", "-c", `set -e; SCRIPT_DIR="$1/scripts"; BASE_DIR="$1"
			source "$SCRIPT_DIR/dependencies_check"; dependencies_check "$BASE_DIR/depends"; arch-test arm64`, "bash", pigen)
		cmd.Env = []string{"PATH=" + sandboxPath(t, pkgs), "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := check(native)
	if err != nil || !strings.Contains(out, "arm64: ok") {
		t.Errorf("Debian %s, native: pi-gen's dependencies_check and arch-test with %v: %v\n%s", release, native, err, out)
	}
	without := slices.DeleteFunc(slices.Clone(native), func(p string) bool { return p == "qemu-user" })
	if out, err := check(without); err == nil || !strings.Contains(out, "qemu-user-binfmt") {
		t.Errorf("without qemu-user, dependencies_check: %v\n%s", err, out)
	}

	dir := sandboxPath(t, docker)
	qemu := filepath.Join(dir, "qemu-aarch64")
	if release == "12" {
		if _, err := os.Lstat(qemu); err == nil {
			t.Errorf("Debian 12's Docker packages give a qemu-aarch64 already (%s)", qemu)
		}
		_ = os.Symlink("/usr/bin/qemu-aarch64-static", qemu) // docs/appliance.md's ln -s
	}
	if out, err := exec.Command("file", "-L", qemu).CombinedOutput(); err != nil || !strings.Contains(string(out), "statically linked") && !strings.Contains(string(out), "static-pie linked") {
		t.Errorf("Debian %s, Docker: qemu-aarch64 is not a static emulator: %v %s", release, err, out)
	}
	for _, tool := range []string{"git", "file"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
			t.Errorf("Debian %s, Docker: no %s", release, tool)
		}
	}
}
