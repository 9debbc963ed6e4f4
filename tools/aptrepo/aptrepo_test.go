package aptrepo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing in CI", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fakeDeb builds a tiny package with dpkg-deb.
func fakeDeb(t *testing.T, dir, name, version, arch string) string {
	t.Helper()
	root := filepath.Join(dir, name+"-"+version+"-"+arch)
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/doc", name), 0o755)
	os.WriteFile(filepath.Join(root, "usr/share/doc", name, "v"), []byte(version+"\n"), 0o644)
	os.WriteFile(filepath.Join(root, "DEBIAN/control"), fmt.Appendf(nil,
		"Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: t <t@example.org>\nDescription: test\n test package\n",
		name, version, arch), 0o644)
	out := root + ".deb"
	must(t, "dpkg-deb", "--root-owner-group", "--build", root, out)
	return out
}

// gpgKey makes a signing key in a fresh gpg home.
func gpgKey(t *testing.T) (home, id string) {
	t.Helper()
	home, err := os.MkdirTemp("", "lablog-gpg-") // short: gpg-agent's socket path has a limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	os.Chmod(home, 0o700)
	must(t, "gpg", "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key", "lablog test repo <repo@example.org>", "ed25519", "sign", "never")
	return home, "repo@example.org"
}

// The repository is signed and consistent: gpgv accepts InRelease and
// Release.gpg with the exported key; the indexes' hashes are the
// Release's; apt itself (the host's, in its own state folders) reads it
// with signed-by and offers the newest version; packages stay in the pool
// across builds; a changed index is caught.
func TestBuild(t *testing.T) {
	need(t, "gpg", "gpgv", "dpkg-deb", "apt-get")
	dir := t.TempDir()
	home, key := gpgKey(t)
	repo := filepath.Join(dir, "repo")
	v1 := fakeDeb(t, dir, "lablogtest", "1.0", "amd64")
	ctx := context.Background()
	if err := Build(ctx, Options{Dir: repo, Debs: []string{v1}, Key: key, GnupgHome: home}); err != nil {
		t.Fatal(err)
	}
	v2 := fakeDeb(t, dir, "lablogtest", "1.1", "amd64")
	arm := fakeDeb(t, dir, "lablogtest", "1.1", "arm64")
	if err := Build(ctx, Options{Dir: repo, Debs: []string{v2, arm}, Key: key, GnupgHome: home}); err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(repo, KeyringName)
	dist := filepath.Join(repo, "dists", "stable")
	must(t, "gpgv", "--keyring", keyring, filepath.Join(dist, "InRelease"))
	must(t, "gpgv", "--keyring", keyring, filepath.Join(dist, "Release.gpg"), filepath.Join(dist, "Release"))

	packages, _ := os.ReadFile(filepath.Join(dist, "main", "binary-amd64", "Packages"))
	for _, want := range []string{"Version: 1.0\n", "Version: 1.1\n", "Filename: pool/main/l/lablog/lablogtest_1.0_amd64.deb\n", "SHA256: "} {
		if !strings.Contains(string(packages), want) {
			t.Errorf("Packages lacks %q:\n%s", want, packages)
		}
	}
	release, _ := os.ReadFile(filepath.Join(dist, "Release"))
	if !strings.Contains(string(release), "Architectures: amd64 arm64\n") {
		t.Errorf("Release:\n%s", release)
	}

	apt := func(args ...string) (string, error) {
		state := filepath.Join(dir, "apt")
		for _, d := range []string{"lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d", "etc/apt.conf.d"} {
			os.MkdirAll(filepath.Join(state, d), 0o755)
		}
		os.WriteFile(filepath.Join(state, "etc/sources.list"), fmt.Appendf(nil,
			"deb [arch=amd64 signed-by=%s] file://%s stable main\n", keyring, repo), 0o644)
		base := []string{"-o", "Dir::State=" + state, "-o", "Dir::State::Lists=" + filepath.Join(state, "lists"),
			"-o", "Dir::State::status=/dev/null", "-o", "Dir::Cache=" + filepath.Join(state, "cache"),
			"-o", "Dir::Etc=" + filepath.Join(state, "etc"), "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"}
		out, err := exec.Command("apt-get", append(base, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := apt("update"); err != nil || strings.Contains(out, "W: ") || strings.Contains(out, "E: ") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := apt("install", "--simulate", "lablogtest"); err != nil || !strings.Contains(out, "Inst lablogtest (1.1 ") {
		t.Errorf("apt-get install --simulate: %v, want 1.1:\n%s", err, out)
	}
	// Signed by another key: apt refuses the repository.
	home2, _ := gpgKey(t)
	must(t, "gpg", "--homedir", home2, "--batch", "--yes", "--local-user", "repo@example.org", "--clearsign",
		"--output", filepath.Join(dist, "InRelease"), filepath.Join(dist, "Release"))
	os.RemoveAll(filepath.Join(dir, "apt", "lists"))
	out, err := apt("update")
	if err == nil || !strings.Contains(out, "NO_PUBKEY") || !strings.Contains(out, "is not signed") {
		t.Errorf("apt-get update of a repository signed by another key: %v\n%s", err, out)
	}
}
