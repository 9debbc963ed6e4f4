package image

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What make-disk.sh and image/test/lablog put on the card, and what the
// checks below look for.
const (
	imagerHost      = "labpi-imager"                 // user-data's hostname
	imagerUser      = "tech"                         // user-data's user, with imager_key
	networkSecret   = "image test wifi passphrase"   // lablog/network.yaml's Wi-Fi password
	boot2InstanceID = "lablog-image-test-2"          // meta-data before boot 2: a new instance
	brokenHost      = "labpi-broken"                 // the invalid user-data's hostname
	updatesDir      = "updates/card"                 // make-updates.sh's files, in the work folder
	goodUpdate      = "99.0"                         // installed at boot 2
	badUpdate       = "99.2"                         // fails its health check, rolled back
	forgedUpdate    = "lablog_99.1-forged_arm64.deb" // signed by a key the image does not trust
)

// imagerSettings: Raspberry Pi Imager's user-data, applied by the image's
// cloud-init, gave the hostname and a user the admin logs in as with the
// key Imager put there (with Imager's sudo); within the limits of
// /etc/cloud/cloud.cfg.d/zz-lablog.cfg (no apt, SSH keys only), and
// lablog is not ordered after cloud-init's late stages.
func imagerSettings(t *testing.T, v *vm) {
	if got := v.mustSh("hostname; cat /etc/hostname; grep -c '127.0.1.1.*" + imagerHost + "' /etc/hosts"); got != imagerHost+"\n"+imagerHost+"\n1\n" {
		t.Errorf("hostname, /etc/hostname, /etc/hosts lines: %q, want %s from user-data", got, imagerHost)
	}
	var got string
	v.waitFor("Imager's user logs in with Imager's key", 2*time.Minute, func() error {
		out, err := sshAs(v, "imager_key", imagerUser, "id -un; hostname; sudo -n id -u; stat -c '%U %a' ~/.ssh/authorized_keys")
		got = out
		return err
	})
	if want := imagerUser + "\n" + imagerHost + "\n0\n" + imagerUser + " 600\n"; got != want {
		t.Errorf("as %s with Imager's key: %q, want %q", imagerUser, got, want)
	}
	if out := v.mustSh("cat /etc/timezone 2>/dev/null; readlink /etc/localtime || true"); !strings.Contains(out, "Europe/London") {
		t.Errorf("time zone from user-data not set: %q", out)
	}
	if out, _ := v.sh("grep '^XKBLAYOUT=' /etc/default/keyboard"); out != "XKBLAYOUT=\"gb\"\n" {
		t.Errorf("keyboard from user-data not set: %q", out)
	}
	// user-data says ssh_pwauth: true and has packages and apt settings:
	// none of it is cloud-init's to do here.
	if out := v.mustSh("sudo sshd -T | grep -i '^passwordauthentication'"); out != "passwordauthentication no\n" {
		t.Errorf("sshd after Imager's ssh_pwauth: %q", out)
	}
	if out, _ := v.sh("ls /etc/apt/apt.conf.d/ | grep -i cloud"); strings.TrimSpace(out) != "" {
		t.Errorf("cloud-init's apt module ran: %s", out)
	}
	after := v.mustSh("systemctl list-dependencies --after --plain --no-pager lablog.service")
	for _, late := range []string{"cloud-config.service", "cloud-final.service", "cloud-init.target"} {
		if strings.Contains(after, late) {
			t.Errorf("lablog.service is ordered after %s", late)
		}
	}
	logCloudInitStatus(t, v)
}

// cloudInitEnv builds the test root with cloud-init (build-rootfs.sh; make
// image-test-cloud-init). make test's root leaves it out: it costs 60% more
// CPU to build under qemu-user and 40-100 s a boot.
const cloudInitEnv = "LABLOG_IMAGE_CLOUD_INIT"

// hasCloudInit reports whether the booted image has cloud-init, and fails
// when cloudInitEnv asked for it and it is not there.
func hasCloudInit(t *testing.T, v *vm) bool {
	t.Helper()
	_, err := v.sh("test -x /usr/bin/cloud-init")
	if err != nil && os.Getenv(cloudInitEnv) == "1" {
		t.Fatalf("%s=1, but the booted image has no cloud-init", cloudInitEnv)
	}
	return err == nil
}

// needCloudInit skips a check of Raspberry Pi Imager's settings in an image
// whose test root has no cloud-init.
func needCloudInit(t *testing.T, has bool) {
	t.Helper()
	if !has {
		t.Skipf("the test root has no cloud-init: make image-test-cloud-init (%s=1) builds one with it", cloudInitEnv)
	}
}

// logCloudInitStatus logs what cloud-init says of its stages so far
// (status.json, which cloud-init status reads: the command itself, a Python
// start under emulation, took more than the 90 s of a guest command while
// boot 2 installed updates). Only a log: reading it may fail.
func logCloudInitStatus(t *testing.T, v *vm) {
	out, err := v.sh("sudo cat /run/cloud-init/status.json")
	if err != nil {
		t.Logf("cloud-init's status.json: %v", err)
		return
	}
	t.Logf("cloud-init's status.json:\n%s", out)
}

// cloudInitTime is what cloud-init cost this boot, as a phase line: the
// wall time of its stages from systemd's timestamps of their units, and the
// CPU time its units used (the single process does every stage's work).
func cloudInitTime(t *testing.T, v *vm) string {
	shown := map[string]string{}
	for _, u := range cloudInitUnits {
		out, err := v.sh("systemctl show -p LoadState -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic -p InactiveEnterTimestampMonotonic -p CPUUsageNSec " + u + ".service")
		if err != nil {
			t.Errorf("cloud-init's units: %v", err)
			return "cloud-init: ?"
		}
		shown[u] = out
	}
	return cloudInitSummary(shown)
}

// cloudInitUnits are cloud-init's units in the order their stages run
// (cloud-init-main, the single process, is ready before the local stage
// starts; cloud-init is the network stage's name before cloud-init 24.3).
// Those up to the network stage come before sysinit.target, so every
// service, lablog's too, waits for them; config and final run beside the
// other services.
var cloudInitUnits = []string{"cloud-init-main", "cloud-init-local", "cloud-init-network", "cloud-init", "cloud-config", "cloud-final"}

// cloudInitSummary turns systemctl show's output for each of cloudInitUnits
// into the phase line.
func cloudInitSummary(shown map[string]string) string {
	var parts []string
	var early, late, cpu float64
	for _, u := range cloudInitUnits {
		p := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(shown[u]), "\n") {
			k, val, _ := strings.Cut(line, "=")
			p[k] = val
		}
		if p["LoadState"] != "loaded" {
			continue
		}
		if ns, err := strconv.ParseUint(p["CPUUsageNSec"], 10, 64); err == nil && ns != math.MaxUint64 {
			cpu += float64(ns) / 1e9
		}
		start, _ := strconv.ParseInt(p["InactiveExitTimestampMonotonic"], 10, 64)
		end, _ := strconv.ParseInt(p["ActiveEnterTimestampMonotonic"], 10, 64)
		if end == 0 { // a oneshot that failed or is done without staying active
			end, _ = strconv.ParseInt(p["InactiveEnterTimestampMonotonic"], 10, 64)
		}
		if start == 0 || end < start {
			parts = append(parts, u+" not run (yet)")
			continue
		}
		s := float64(end-start) / 1e6
		if u == "cloud-config" || u == "cloud-final" {
			late += s
		} else {
			early += s
		}
		parts = append(parts, fmt.Sprintf("%s %.1f s", strings.TrimPrefix(u, "cloud-"), s))
	}
	return fmt.Sprintf("cloud-init ran %.1f s: %.1f s before sysinit.target, %.1f s beside the services; %.1f s CPU (%s)",
		early+late, early, late, cpu, strings.Join(parts, ", "))
}

// networkImported: lablog/network.yaml became a NetworkManager keyfile,
// owner-only, the Wi-Fi country is on cmdline.txt, and the password is
// nowhere on the card any more; the import log says how Imager's settings
// and the folder's go together.
func networkImported(t *testing.T, v *vm) {
	kf := "/etc/NetworkManager/system-connections/lablog-wifi-LabNet.nmconnection"
	if got, err := v.sh("sudo stat -c '%a %U' " + kf + " && sudo grep -c '^psk=" + networkSecret + "$' " + kf); err != nil || got != "600 root\n1\n" {
		t.Errorf("keyfile %s: %q %v", kf, got, err)
	}
	card := strings.Fields(v.mustSh("ls -A /boot/firmware/lablog"))
	if !slices.Contains(card, "network-imported.yaml") || slices.Contains(card, "network.yaml") {
		t.Errorf("boot partition's lablog/ holds %v: want network-imported.yaml, no network.yaml", card)
	}
	if out, _ := v.sh("sudo grep -rl '" + networkSecret + "' /boot/firmware"); strings.TrimSpace(out) != "" {
		t.Errorf("network.yaml's password is still on the card: %s", out)
	}
	if got := v.mustSh("cat /boot/firmware/cmdline.txt"); !slices.Contains(strings.Fields(got), "cfg80211.ieee80211_regdom=GB") {
		t.Errorf("cmdline.txt has no Wi-Fi country: %q", got)
	}
	log := v.mustSh("sudo journalctl -b --no-pager -o cat -u lablog-import-config")
	for _, want := range []string{"imported network.yaml", "removed network.yaml",
		"both Raspberry Pi Imager (network-config) and lablog/network.yaml", "SSH keys come from both Raspberry Pi Imager"} {
		if !strings.Contains(log, want) {
			t.Errorf("the import's log lacks %q:\n%s", want, log)
		}
	}
}

// sshAs runs a command in the guest as user with key, on a connection of
// its own.
func sshAs(v *vm, key, user, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append(v.sshArgs(key), user+"@127.0.0.1", command)
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s@: %w: %s", user, err, out)
	}
	return string(out), nil
}

// mtools runs an mtools command on the card's boot partition (QEMU off).
func mtools(t *testing.T, disk string, tool string, args ...string) {
	t.Helper()
	out, err := exec.Command("partx", "-g", "-n", "1", "-o", "START", disk).Output()
	if err != nil {
		t.Fatalf("partx %s: %v", disk, err)
	}
	start, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("partx %s: %q", disk, out)
	}
	cmd := exec.Command(tool, append([]string{"-i", fmt.Sprintf("%s@@%d", disk, start*512)}, args...)...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
}

// cardForBoot2 does to the card, between the boots, what a technician
// would: a user-data that is not valid YAML with a new instance-id (so
// cloud-init takes the card as new and reads it), and signed updates in
// lablog/update/.
func cardForBoot2(t *testing.T, work string) {
	t.Helper()
	disk := filepath.Join(work, "disk.img")
	dir := t.TempDir()
	files := map[string]string{
		"user-data": "#cloud-config\nhostname: " + brokenHost + "\nusers:\n- name: tech2\n\tssh_authorized_keys: [\"ssh-ed25519 AAAA\n",
		"meta-data": "instance-id: " + boot2InstanceID + "\ndsmode: local\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mtools(t, disk, "mcopy", "-o", p, "::/"+name)
	}
	updates, _ := filepath.Glob(filepath.Join(work, updatesDir, "*"))
	if len(updates) != 6 {
		t.Fatalf("want 3 packages and their signatures in %s (make-updates.sh), found %v", filepath.Join(work, updatesDir), updates)
	}
	mtools(t, disk, "mmd", "::/lablog/update")
	mtools(t, disk, "mcopy", append(updates, "::/lablog/update/")...)
}

// updatesAtBoot: lablog-update.service tried the card's three updates in
// order of name: the good one installed, the forged one refused, the bad
// one rolled back to the good one; the status page gives both reasons.
func updatesAtBoot(t *testing.T, v *vm) {
	v.waitFor("lablog-update.service has tried the card's updates", 12*time.Minute, func() error {
		out, err := v.sh("systemctl show -p ExecMainExitTimestampMonotonic --value lablog-update.service")
		if err != nil {
			return err
		}
		if n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64); n == 0 {
			return fmt.Errorf("still running (or not started)")
		}
		return nil
	})
	journal := v.mustSh("sudo journalctl -b --no-pager -o cat -u lablog-update")
	t.Logf("lablog-update:\n%s", journal)
	if got := v.mustSh("dpkg-query -W -f='${Version}' lablog"); got != goodUpdate {
		t.Errorf("installed lablog %q, want %s (the good update, rolled back to)", got, goodUpdate)
	}
	v.waitFor("the status page shows the refusal and the rollback", 2*time.Minute, func() error {
		s, err := v.status()
		if err != nil {
			return err
		}
		if s.Version != "v"+goodUpdate {
			return fmt.Errorf("version %q", s.Version)
		}
		var refused, rolled bool
		for _, f := range s.Faults {
			text := f.Message + " " + f.Detail
			switch f.Kind {
			case "update_refused":
				refused = refused || strings.Contains(text, forgedUpdate) && strings.Contains(text, "not trust")
			case "update_rolled_back":
				rolled = rolled || strings.Contains(text, "lablog "+badUpdate+" failed its health check")
			}
		}
		if !refused || !rolled {
			return fmt.Errorf("faults %+v: want the forged update refused and %s rolled back", s.Faults, badUpdate)
		}
		return nil
	})
	if out := v.mustSh("sudo ls /var/lib/lablog/previous"); !strings.Contains(out, "lablog_"+goodUpdate+"_arm64.deb") {
		t.Errorf("kept packages: %s", out)
	}
}

// invalidUserData: the boot read the new card (its instance-id) with a
// user-data that is not YAML, applied none of it, and lablog recorded
// anyway (the caller waited for that).
func invalidUserData(t *testing.T, v *vm) {
	if got := v.mustSh("sudo cat /var/lib/cloud/data/instance-id"); strings.TrimSpace(got) != boot2InstanceID {
		t.Errorf("cloud-init's instance %q, want %s: it did not read the new card", got, boot2InstanceID)
	}
	if got := v.mustSh("hostname"); got != imagerHost+"\n" {
		t.Errorf("hostname %q after an invalid user-data, want %s kept", got, imagerHost)
	}
	if out, err := v.sh("id tech2"); err == nil {
		t.Errorf("the invalid user-data made a user: %s", out)
	}
	logCloudInitStatus(t, v)
}
