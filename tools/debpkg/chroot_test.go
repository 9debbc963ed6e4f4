package debpkg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// rootfsTarball is the arm64 Debian root that make image-test debootstraps
// (image/test/build-rootfs.sh): LABLOG_DEB_ROOTFS, or the newest one in
// its cache, which is only read.
func rootfsTarball(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LABLOG_DEB_ROOTFS"); p != "" {
		return p
	}
	cache := os.Getenv("LABLOG_IMAGE_CACHE")
	if cache == "" {
		cache = "/var/cache/lablog-image-test"
	}
	found, _ := filepath.Glob(filepath.Join(cache, "rootfs-*-arm64-*.tar"))
	slices.SortFunc(found, func(a, b string) int { return modTime(b).Compare(modTime(a)) })
	if len(found) == 0 {
		msg := "no arm64 root filesystem: set LABLOG_DEB_ROOTFS or run image/test/build-rootfs.sh (make deb-test does)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return found[0]
}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// chroot is a throwaway copy of the arm64 root; commands run in it through
// qemu-user (binfmt_misc). Systemd does not run there: a shim in /tmp/shim
// records what the maintainer scripts ask deb-systemd-invoke to start, stop
// or restart, and /run/systemd/system makes the scripts believe it runs.
type chroot struct {
	t    *testing.T
	root string
}

const shimLog = "/tmp/shim/calls"

func newChroot(t *testing.T) *chroot {
	t.Helper()
	if os.Geteuid() != 0 {
		if inCI() {
			t.Fatal("the package test needs root (chroot, dpkg)")
		}
		t.Skip("needs root (chroot, dpkg)")
	}
	enableBinfmt(t)
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil {
		msg := "binfmt_misc has no qemu-aarch64 (apt-get install qemu-user-static binfmt-support; image/test/build-rootfs.sh enables it)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tarball := rootfsTarball(t)
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The kernel and its modules are for booting; dpkg needs neither.
	if out, err := exec.Command("tar", "-C", root, "--numeric-owner", "--exclude=./usr/lib/modules",
		"--exclude=./boot", "-xf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", tarball, err, out)
	}
	t.Logf("unpacked %s in %v", filepath.Base(tarball), time.Since(start).Round(time.Millisecond))
	c := &chroot{t: t, root: root}
	c.write("/tmp/shim/deb-systemd-invoke", "#!/bin/sh\necho \"deb-systemd-invoke $*\" >>"+shimLog+"\n", 0o755)
	if err := os.MkdirAll(c.path("/run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

// enableBinfmt turns on qemu-user for arm64 binaries as
// image/test/build-rootfs.sh does, for a machine where that script found
// its root cached and so did not (a fresh container has binfmt_misc off).
func enableBinfmt(t *testing.T) {
	const entry = "/proc/sys/fs/binfmt_misc/qemu-aarch64"
	if _, err := os.Stat(entry); err == nil {
		return
	}
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/status"); err != nil {
		out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc").CombinedOutput()
		t.Logf("mount binfmt_misc: %v %s", err, out)
	}
	out, err := exec.Command("update-binfmts", "--enable", "qemu-aarch64").CombinedOutput()
	t.Logf("update-binfmts --enable qemu-aarch64: %v %s", err, out)
}

func (c *chroot) path(p string) string { return filepath.Join(c.root, p) }

func (c *chroot) write(p, text string, mode os.FileMode) {
	c.t.Helper()
	if err := os.MkdirAll(filepath.Dir(c.path(p)), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(c.path(p), []byte(text), mode); err != nil {
		c.t.Fatal(err)
	}
}

// run runs a command in the root and returns its combined output.
func (c *chroot) run(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command("chroot", append([]string{c.root, "/usr/bin/env", "-i",
		"PATH=/tmp/shim:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *chroot) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// dpkgInstall copies a package into the root and installs it.
func (c *chroot) dpkgInstall(deb string) (string, error) {
	c.t.Helper()
	data, err := os.ReadFile(deb)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write("/tmp/"+filepath.Base(deb), string(data), 0o644)
	return c.run("dpkg", "--force-confdef", "--force-confold", "-i", "/tmp/"+filepath.Base(deb))
}

// status is dpkg's view of lablog: "install ok installed 1.0" or "".
func (c *chroot) status() string {
	out, _ := c.run("dpkg-query", "-W", "-f", "${Status} ${Version}", "lablog")
	if strings.Contains(out, "no packages found") {
		return ""
	}
	return strings.TrimSpace(out)
}

// invoked is what the maintainer scripts asked deb-systemd-invoke since
// the last call, and clears the record.
func (c *chroot) invoked() []string {
	data, _ := os.ReadFile(c.path(shimLog))
	os.Remove(c.path(shimLog))
	var calls []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "deb-systemd-invoke "); ok {
			calls = append(calls, rest)
		}
	}
	return calls
}

// account is a user or group from the root's passwd or group file.
func (c *chroot) account(file, name string) []string {
	data, err := os.ReadFile(c.path(file))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Split(line, ":"); f[0] == name {
			return f
		}
	}
	return nil
}

func (c *chroot) id(file, name string) int {
	c.t.Helper()
	f := c.account(file, name)
	if f == nil {
		c.t.Fatalf("%s has no %s", file, name)
	}
	n, _ := strconv.Atoi(f[2])
	return n
}

// wantMode checks a path's type, mode and owner.
func (c *chroot) wantMode(p string, dir bool, mode fs.FileMode, uid, gid int) {
	c.t.Helper()
	fi, err := os.Lstat(c.path(p))
	if err != nil {
		c.t.Errorf("%s: %v", p, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.IsDir() != dir || fi.Mode().Perm() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		c.t.Errorf("%s: dir %v mode %v owner %d:%d; want dir %v mode %v owner %d:%d",
			p, fi.IsDir(), fi.Mode().Perm(), st.Uid, st.Gid, dir, mode, uid, gid)
	}
}

// sameFile says whether two paths of the root name one file (through the
// root's own relative links, such as /lib -> usr/lib).
func (c *chroot) sameFile(a, b string) bool {
	ia, errA := os.Stat(c.path(a))
	ib, errB := os.Stat(c.path(b))
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}

func (c *chroot) exists(p string) bool {
	_, err := os.Lstat(c.path(p))
	return err == nil
}

func (c *chroot) sum(p string) string {
	c.t.Helper()
	data, err := os.ReadFile(c.path(p))
	if err != nil {
		c.t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// archiveSums is every file under the archive with its checksum.
func (c *chroot) archiveSums() map[string]string {
	c.t.Helper()
	sums := map[string]string{}
	filepath.WalkDir(c.path("/media/lablog"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			sums[strings.TrimPrefix(p, c.root)] = c.sum(strings.TrimPrefix(p, c.root))
		}
		return nil
	})
	return sums
}

// record appends n frames of stream in hour to the buffer in the root,
// as the daemon would (the file stays lablog's), and returns their text.
func (c *chroot) record(stream string, hour time.Time, n int) []string {
	c.t.Helper()
	path := c.path("/var/lib/lablog/buffer.db")
	db, err := buffer.Open(path, buffer.Options{MaxSize: 64 << 20, InitialMmapSize: 1 << 20})
	if err != nil {
		c.t.Fatal(err)
	}
	var recs []frame.Record
	var texts []string
	for i := range n {
		text := fmt.Sprintf(`{"user":"u%d","t":%d,"type":"log","payload":{"stream":%q,"i":%d}}`,
			i%7, hour.UnixMilli()+int64(i), stream, i)
		recs = append(recs, frame.Record{Stream: stream, Received: hour.Add(time.Duration(i) * time.Second),
			ClockSynced: true, Kind: frame.Text, Data: []byte(text)})
		texts = append(texts, text)
	}
	if err := db.Append(recs); err != nil {
		c.t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		c.t.Fatal(err)
	}
	uid, gid := c.id("/etc/passwd", "lablog"), c.id("/etc/group", "lablog")
	if err := os.Chown(path, uid, gid); err != nil {
		c.t.Fatal(err)
	}
	return texts
}

// testConfig is an admin's own lablog.yaml: compaction needs no network.
const testConfig = `# an admin's configuration (the package must keep it)
buffer:
  path: /var/lib/lablog/buffer.db
archive:
  path: /media/lablog
  require: marker
status:
  listen: ""
streams:
  - name: spin30
    url: ws://127.0.0.1:9/spin30
  - name: pend00
    url: ws://127.0.0.1:9/pend00
`

// The arm64 package in the arm64 root of the image test: install, files,
// user, unit; purge of an unused install; upgrade over a buffer holding
// records and an archive; a refused downgrade to an older buffer format;
// the upgraded lablog archives every record; purge keeps buffer and archive.
func TestArm64PackageInChroot(t *testing.T) {
	t.Parallel()
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	c := newChroot(t)
	pkgs := t.TempDir()
	v10 := buildPackage(t, "arm64", "1.0", "debtest-1.0", 0, pkgs)
	v11 := buildPackage(t, "arm64", "1.1", "debtest-1.1", 0, pkgs)
	// A downgrade whose lablog reads only an older buffer format.
	older := buildPackage(t, "arm64", "1.0.5", "debtest-1.0", buffer.FormatVersion-1, pkgs)

	step("packages built")

	// --- install -----------------------------------------------------------
	out, err := c.dpkgInstall(v10)
	if err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if !strings.Contains(out, "not started") {
		t.Errorf("a fresh install does not say how to start lablog:\n%s", out)
	}
	if got := c.invoked(); len(got) != 0 {
		t.Errorf("a fresh install asked deb-systemd-invoke %q; want nothing started", got)
	}
	// The packaged example keeps the enabled unit idle (its ExecCondition)
	// until an admin edits it: a reboot starts nothing.
	if out, err := c.run("/usr/bin/lablog", "config", "ready", ConfigPath); err == nil || !strings.Contains(out, "still the example configuration") {
		t.Errorf("lablog config ready on the packaged example: %v, want it refused\n%s", err, out)
	}
	if unit, _ := os.ReadFile(c.path(UnitPath)); !strings.Contains(string(unit), "\nExecCondition="+BinPath+" config ready "+ConfigPath+"\n") {
		t.Errorf("the packaged unit has no ExecCondition on the example:\n%s", unit)
	}
	c.checkInstalled("1.0", "debtest-1.0")

	step("installed and checked")

	// --- purge of an unused install leaves nothing ---------------------------
	out = c.must("dpkg", "--purge", "lablog")
	for _, p := range []string{"/usr/bin/lablog", "/lib/systemd/system/lablog.service", "/etc/lablog",
		"/var/lib/lablog", "/media/lablog", "/etc/systemd/system/multi-user.target.wants/lablog.service"} {
		if c.exists(p) {
			t.Errorf("purge of an unused lablog left %s\n%s", p, out)
		}
	}
	if c.account("/etc/passwd", "lablog") != nil || c.account("/etc/group", "lablog") != nil {
		t.Errorf("purge of an unused lablog left its user or group\n%s", out)
	}
	if s := c.status(); strings.Contains(s, "installed") {
		t.Errorf("after purge dpkg says %q", s)
	}

	step("purged")

	// --- in use: an admin's config, an archive, a buffer with records -------
	if out, err := c.dpkgInstall(v10); err != nil {
		t.Fatalf("dpkg -i again: %v\n%s", err, out)
	}
	c.invoked()
	c.write("/etc/lablog/lablog.yaml", testConfig, 0o640)
	c.write("/media/lablog/.lablog-archive", "", 0o644)
	hour := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	var written []string
	written = append(written, c.record("spin30", hour, 300)...)
	c.must("/usr/bin/lablog", "compact", "--config", "/etc/lablog/lablog.yaml")
	written = append(written, c.record("spin30", hour.Add(time.Hour), 200)...)
	written = append(written, c.record("pend00", hour.Add(time.Hour), 100)...)
	archived := c.archiveSums()
	if len(archived) < 2 { // the marker and the first hour's file
		t.Fatalf("the first compaction archived nothing: %v", archived)
	}
	bufferSum := c.sum("/var/lib/lablog/buffer.db")

	step("installed again, recorded, compacted")

	// --- upgrade ---------------------------------------------------------------
	out, err = c.dpkgInstall(v11)
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if got := c.invoked(); !slices.Equal(got, []string{"try-restart lablog.service"}) {
		t.Errorf("the upgrade asked deb-systemd-invoke %q; want one try-restart", got)
	}
	c.checkInstalled("1.1", "debtest-1.1")
	if got, _ := os.ReadFile(c.path("/etc/lablog/lablog.yaml")); string(got) != testConfig {
		t.Errorf("the upgrade replaced the admin's lablog.yaml:\n%s", got)
	}
	if c.sum("/var/lib/lablog/buffer.db") != bufferSum {
		t.Error("the upgrade changed the buffer")
	}
	if got := c.archiveSums(); !mapsEqual(got, archived) {
		t.Errorf("the upgrade changed the archive: %v, was %v", got, archived)
	}

	step("upgraded and checked")

	// --- a downgrade to an older buffer format is refused --------------------
	out, err = c.dpkgInstall(older)
	if err == nil {
		t.Fatalf("a downgrade to buffer format %d was installed:\n%s", buffer.FormatVersion-1, out)
	}
	for _, want := range []string{"refusing to downgrade", fmt.Sprintf("writes buffer\nformat %d", buffer.FormatVersion),
		fmt.Sprintf("reads format %d at most", buffer.FormatVersion-1), "Nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refused downgrade does not say %q:\n%s", want, out)
		}
	}
	if s := c.status(); s != "install ok installed 1.1" {
		t.Errorf("after the refused downgrade dpkg says %q", s)
	}
	if v := c.must("/usr/bin/lablog", "version"); v != "lablog debtest-1.1\n" {
		t.Errorf("after the refused downgrade lablog is %q", v)
	}
	if c.sum("/var/lib/lablog/buffer.db") != bufferSum {
		t.Error("the refused downgrade changed the buffer")
	}
	c.invoked()

	step("downgrade refused")

	// --- the upgraded lablog archives every record, each once ----------------
	c.must("/usr/bin/lablog", "compact", "--config", "/etc/lablog/lablog.yaml")
	c.must("/usr/bin/lablog", "verify", "/media/lablog")
	files, _ := filepath.Glob(c.path("/media/lablog/stream=*/date=*/*.parquet"))
	var got []string
	for _, f := range files {
		rows, _, err := archive.ReadRows(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Raw != nil {
				got = append(got, *r.Raw)
			}
		}
	}
	slices.Sort(got)
	want := slices.Clone(written)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the archive holds %d messages, want the %d recorded (%d files)", len(got), len(want), len(files))
	}
	for p, sum := range archived {
		if c.sum(p) != sum {
			t.Errorf("%s, archived before the upgrade, changed", p)
		}
	}

	step("archive checked")

	// --- purge keeps an unarchived buffer and the archive, and says where ----
	c.record("spin30", hour.Add(2*time.Hour), 50)
	bufferSum = c.sum("/var/lib/lablog/buffer.db")
	archived = c.archiveSums()
	out = c.must("dpkg", "--purge", "lablog")
	if got := c.invoked(); !slices.Equal(got, []string{"stop lablog.service"}) {
		t.Errorf("removal asked deb-systemd-invoke %q; want one stop", got)
	}
	for _, want := range []string{"kept the buffer in /var/lib/lablog", "kept the archive /media/lablog", "userdel lablog"} {
		if !strings.Contains(out, want) {
			t.Errorf("purge does not say %q:\n%s", want, out)
		}
	}
	if c.sum("/var/lib/lablog/buffer.db") != bufferSum {
		t.Error("purge changed the buffer")
	}
	if got := c.archiveSums(); !mapsEqual(got, archived) {
		t.Errorf("purge changed the archive: %v, was %v", got, archived)
	}
	for _, p := range []string{"/usr/bin/lablog", "/lib/systemd/system/lablog.service", "/etc/lablog",
		"/etc/systemd/system/multi-user.target.wants/lablog.service"} {
		if c.exists(p) {
			t.Errorf("purge left %s", p)
		}
	}
	if c.account("/etc/passwd", "lablog") == nil {
		t.Error("purge removed the user that owns the kept buffer")
	}
	step("purged, buffer and archive kept")
}

// checkInstalled checks what an installed package must have made.
func (c *chroot) checkInstalled(debVersion, built string) {
	t := c.t
	t.Helper()
	if s := c.status(); s != "install ok installed "+debVersion {
		t.Errorf("dpkg says %q, want %s installed", s, debVersion)
	}
	if v := c.must("/usr/bin/lablog", "version"); v != "lablog "+built+"\n" {
		t.Errorf("lablog version in the root = %q, want %s", v, built)
	}
	user := c.account("/etc/passwd", "lablog")
	if user == nil {
		t.Fatal("no user lablog")
	}
	uid, gid := c.id("/etc/passwd", "lablog"), c.id("/etc/group", "lablog")
	if uid >= 1000 || user[5] != "/var/lib/lablog" || user[6] != "/usr/sbin/nologin" || user[3] != strconv.Itoa(gid) {
		t.Errorf("user lablog = %v: want a system user (uid < 1000) of group lablog, home /var/lib/lablog, no login", user)
	}
	c.wantMode("/usr/bin/lablog", false, 0o755, 0, 0)
	c.wantMode(UnitPath, false, 0o644, 0, 0)
	c.wantMode("/etc/lablog", true, 0o750, 0, gid)
	c.wantMode(ConfigPath, false, 0o640, 0, gid)
	c.wantMode("/var/lib/lablog", true, 0o750, uid, gid)
	c.wantMode("/media/lablog", true, 0o755, 0, 0)
	for _, p := range []string{manPath, docDir + "/copyright", docDir + "/changelog.gz", docDir + "/README.md.gz"} {
		c.wantMode(p, false, 0o644, 0, 0)
	}
	if conf := c.must("dpkg-query", "-W", "-f", "${Conffiles}", "lablog"); !strings.Contains(conf, ConfigPath+" ") {
		t.Errorf("%s is not a conffile: %q", ConfigPath, conf)
	}
	// The unit is the one the installed lablog renders for its config
	// (the admin's config of this test keeps the unit's paths).
	unit, err := os.ReadFile(c.path(UnitPath))
	if err != nil {
		t.Fatal(err)
	}
	printed := c.must("/usr/bin/lablog", "install", "--print", "--exec", BinPath, "--config", ConfigPath)
	if !bytes.Equal(unit, []byte(printed)) {
		t.Errorf("the packaged unit differs from lablog install --print:\n%s\n---\n%s", unit, printed)
	}
	// Enabled: a link to the packaged unit. deb-systemd-helper links the
	// path it found (bookworm's); trixie's has systemctl preset link it, and
	// systemd names the unit by its merged-/usr path, the same file.
	link, err := os.Readlink(c.path("/etc/systemd/system/multi-user.target.wants/lablog.service"))
	if err != nil || (link != UnitPath && link != "/usr"+UnitPath) || !c.sameFile(link, UnitPath) {
		t.Errorf("lablog.service is not enabled: %q %v", link, err)
	}
	// systemd (the root's own, arm64) accepts the unit without a word.
	if out, err := c.run("systemd-analyze", "verify", UnitPath); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", UnitPath, err, out)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
