package image

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests that run pi-gen's own scripts (the pinned release, from the tarball
// in ../shared/pi-gen beside the repository, or LABLOG_PIGEN_TARBALL).

// piGenTree unpacks pi-gen into a fresh folder and returns its root.
func piGenTree(t *testing.T) string {
	t.Helper()
	tarball := os.Getenv("LABLOG_PIGEN_TARBALL")
	if tarball == "" {
		m, _ := filepath.Glob(filepath.Join(repoRoot(t), "../shared/pi-gen/pi-gen-*.tar.gz"))
		if len(m) != 1 {
			if os.Getenv("CI") != "" {
				t.Fatalf("pi-gen tarball: found %v in ../shared/pi-gen", m)
			}
			t.Skipf("no pi-gen tarball in ../shared/pi-gen (found %v)", m)
		}
		tarball = m[0]
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-C", dir, "-xzf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", tarball, err, out)
	}
	root := filepath.Join(dir, "pi-gen")
	if _, err := os.Stat(filepath.Join(root, "build-docker.sh")); err != nil {
		t.Fatalf("%s holds no pi-gen/build-docker.sh: %v", tarball, err)
	}
	return root
}

// piGenDepends are the tools pi-gen's build.sh checks for (its depends file).
func piGenDepends(t *testing.T, pigen string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pigen, "depends"))
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			tools = append(tools, strings.SplitN(line, ":", 2)[0])
		}
	}
	return tools
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestDockerRoute runs make image's Docker route: build-image.sh, then pi-gen's
// real build-docker.sh and, "in the container", pi-gen's real build.sh, with
// image/test/docker-standin.sh as docker. The container's view is its own
// copy of the pi-gen tree; a path of this machine written inside it is lost,
// as with Docker. Stages 0-2 need the Raspberry Pi archive, so the build
// exports a stand-in stage through a stand-in export step that writes the
// image where pi-gen's export-image/05-finalise does:
// ${DEPLOY_DIR}/${ARCHIVE_FILENAME}${IMG_SUFFIX}.img.xz.
//
// It pins issue 16's items 1 (the image must come out of the container and
// land in DEPLOY) and 6 (a failed build must not leave a container behind
// that stops the next one; one left earlier is removed).
func TestDockerRoute(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a private mount namespace (unshare) and pi-gen's build.sh")
	}
	need(t, "unshare", "util-linux")
	needArm64Binfmt(t)
	root := repoRoot(t)
	host, arm64 := distBinary(t, "lablog"), distBinary(t, "lablog-linux-arm64")
	pigen := piGenTree(t)
	for _, tool := range piGenDepends(t, pigen) {
		need(t, tool, "pi-gen's build-host packages (docs/appliance.md)")
	}
	static := need(t, "qemu-aarch64-static", "qemu-user-static")

	// The stand-in stage and export step (pi-gen's stage walker runs both).
	ours, err := os.ReadFile(filepath.Join(root, "image/stage-lablog/EXPORT_IMAGE"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(pigen, "stage-standin/EXPORT_IMAGE"), string(ours), 0o644)
	writeFile(t, filepath.Join(pigen, "stage-standin/SKIP"), "", 0o644)
	writeFile(t, filepath.Join(pigen, "export-standin/00-deploy/00-run.sh"), `#!/bin/bash -e
mkdir -p "${DEPLOY_DIR}"
echo "image of ${IMG_NAME}${IMG_SUFFIX}" | xz >"${DEPLOY_DIR}/${ARCHIVE_FILENAME}${IMG_SUFFIX}.img.xz"
`, 0o755)
	extra := filepath.Join(t.TempDir(), "extra-config")
	writeFile(t, extra, "STAGE_LIST=stage-standin\nEXPORT_CONFIG_DIR=export-standin\nIMG_DATE=2026-07-01\n", 0o644)
	broken := filepath.Join(t.TempDir(), "broken-config")
	writeFile(t, broken, "FIRST_USER_NAME=Not-A-User\n", 0o644) // pi-gen's build.sh refuses it

	state := t.TempDir()
	bin := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "image/test/docker-standin.sh"), filepath.Join(bin, "docker")); err != nil {
		t.Fatal(err)
	}
	// build-docker.sh registers its own binfmt entry through sudo: recorded,
	// never run.
	writeFile(t, filepath.Join(bin, "sudo"), "#!/bin/sh\necho \"sudo $*\" >>\"$DOCKER_STANDIN_STATE/calls.log\"\n", 0o755)
	// build-docker.sh registers `which qemu-aarch64` with binfmt_misc: a
	// dynamically linked one is refused before anything runs.
	qemu := filepath.Join(bin, "qemu-aarch64")
	if err := os.Symlink("/bin/true", qemu); err != nil {
		t.Fatal(err)
	}
	deploy := t.TempDir()
	build := func(config string) (string, error) {
		cmd := exec.Command(filepath.Join(root, "image/build-image.sh"))
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_STANDIN_STATE="+state,
			"PIGEN_DIR="+pigen, "PIGEN_DOCKER=1", "DEPLOY="+deploy, "PIGEN_CONFIG_EXTRA="+config,
			"RELAY_HOST_BIN="+arm64, "LABLOG_ARM64="+arm64, "LABLOG_HOST="+host, "GIT_HASH=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	containers := func() []string {
		entries, _ := os.ReadDir(filepath.Join(state, "containers"))
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	if out, err := build(extra); err == nil || !strings.Contains(out, "needs a static qemu-aarch64") {
		t.Errorf("Docker route with a dynamically linked qemu-aarch64: %v\n%s", err, out)
	}
	os.Remove(qemu)
	if err := os.Symlink(static, qemu); err != nil {
		t.Fatal(err)
	}

	// A container left by an earlier failed build, as build-docker.sh leaves it.
	if err := os.MkdirAll(filepath.Join(state, "containers/pigen_work/pi-gen"), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := build(extra)
	if err != nil {
		t.Fatalf("make image, Docker route: %v\n%s", err, out)
	}
	t.Logf("Docker route through the stand-in in %.1f s", time.Since(start).Seconds())
	if !strings.Contains(out, "removing container pigen_work left by an earlier build") {
		t.Errorf("the stale container was not removed:\n%s", out)
	}
	img := filepath.Join(deploy, "image_2026-07-01-lablog.img.xz")
	got, err := exec.Command("xz", "-dc", img).Output()
	if err != nil || string(got) != "image of lablog\n" {
		t.Errorf("image delivered to DEPLOY: %q %v\n%s", got, err, out)
	}
	if c := containers(); len(c) != 0 {
		t.Errorf("containers left after a good build: %v", c)
	}
	calls, _ := os.ReadFile(filepath.Join(state, "calls.log"))
	for _, want := range []string{"sudo bash -c echo ':qemu-aarch64-rpi:", "build --build-arg BASE_IMAGE=debian:trixie -t pi-gen " + pigen, "cp pigen_work:/pi-gen/deploy -", "rm -v pigen_work"} {
		if !bytes.Contains(calls, []byte(want)) {
			t.Errorf("build-docker.sh did not call docker %q; calls:\n%s", want, calls)
		}
	}
	// The image was written inside the container, not to this machine's tree.
	if _, err := os.Stat(filepath.Join(pigen, "work")); err == nil {
		t.Errorf("pi-gen's work/ appeared in this machine's tree: the build did not run in the container's copy")
	}

	// A build that fails in the container: no container stays, its log does,
	// and the next build runs.
	out, err = build(broken)
	if err == nil {
		t.Fatalf("a config pi-gen refuses was built:\n%s", out)
	}
	if !strings.Contains(out, "Invalid FIRST_USER_NAME") {
		t.Errorf("the failure is not pi-gen's:\n%s", out)
	}
	if c := containers(); len(c) != 0 {
		t.Errorf("containers left after a failed build: %v\n%s", c, out)
	}
	if log, err := os.ReadFile(filepath.Join(pigen, "build-docker-failed.log")); err != nil || !bytes.Contains(log, []byte("Invalid FIRST_USER_NAME")) {
		t.Errorf("the failed build's log: %v\n%s", err, log)
	}
	os.Remove(img)
	if out, err := build(extra); err != nil {
		t.Fatalf("the build after a failed one: %v\n%s", err, out)
	}
	if _, err := os.Stat(img); err != nil {
		t.Errorf("no image after the failed build's successor: %v", err)
	}
}
