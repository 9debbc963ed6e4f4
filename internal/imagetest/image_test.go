package imagetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/archive"
)

// The streams of image/test/lablog/lablog.yaml.
var wantStreams = []string{"spin30", "spin31", "spin32", "spin33"}

// TestImage boots the image twice: the first boot imports the config from
// the boot partition, records the simulated lab and archives it; then the
// power is cut (SIGKILL to QEMU) and the second boot must open the buffer
// with everything the first boot had committed.
func TestImage(t *testing.T) {
	work := os.Getenv("LABLOG_IMAGE_WORK")
	if work == "" {
		t.Skip("LABLOG_IMAGE_WORK not set: run make image-test")
	}
	lablog := os.Getenv("LABLOG_BIN") // this machine's lablog, for verify
	if lablog == "" {
		t.Fatal("LABLOG_BIN not set")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	// ---- boot 1 ----
	v := startVM(t, work, 1)
	v.waitFor("status page answers", 6*time.Minute, func() error { _, err := v.status(); return err })
	v.waitFor("every configured stream records", 3*time.Minute, func() error {
		s, err := v.status()
		if err != nil {
			return err
		}
		var names []string
		for _, st := range s.Streams {
			names = append(names, st.Name)
			if !st.Connected || st.MessagesTotal == 0 {
				return fmt.Errorf("%s: state %s, %d messages", st.Name, st.State, st.MessagesTotal)
			}
		}
		sort.Strings(names)
		if !slices.Equal(names, wantStreams) {
			return fmt.Errorf("streams %v, want %v (the imported config's)", names, wantStreams)
		}
		return nil
	})
	if code, body, err := v.get("/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz: %d %v %s", code, err, body)
	}
	if code, body, err := v.get("/"); err != nil || code != 200 || !bytes.Contains(body, []byte("spin33")) {
		t.Errorf("status page: %d %v", code, err)
	}
	v.waitFor("ssh with the key from the boot partition", 2*time.Minute, func() error { _, err := v.sh("true"); return err })

	t.Run("config imported, tokens off the card", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(repo, "image/test/lablog/lablog.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := v.mustSh("sudo cat /etc/lablog/lablog.yaml"); got != string(want) {
			t.Errorf("/etc/lablog/lablog.yaml is not the boot partition's:\n%s", got)
		}
		card := strings.Fields(v.mustSh("ls -A /boot/firmware/lablog"))
		if slices.Contains(card, "tokens") || slices.Contains(card, "IMPORT-ERROR.txt") {
			t.Errorf("boot partition's lablog/ holds %v; the tokens must be gone, no error", card)
		}
		for _, f := range []string{"log.access.pend98", "log.token.pend98", "log.access.pend99", "log.token.pend99"} {
			want, _ := os.ReadFile(filepath.Join(repo, "image/test/lablog/tokens", f))
			got := v.mustSh("sudo stat -c '%a %U:%G' /etc/lablog/tokens/" + f + " && sudo cat /etc/lablog/tokens/" + f)
			if got != "640 root:lablog\n"+string(want) {
				t.Errorf("token %s imported as %q", f, got)
			}
		}
		if got := v.mustSh("sudo stat -c '%a %U:%G' /etc/lablog /etc/lablog/tokens"); got != "750 root:lablog\n750 root:lablog\n" {
			t.Errorf("config folders: %q", got)
		}
		if got := v.mustSh("findmnt -n -o OPTIONS /boot/firmware"); !strings.HasPrefix(got, "ro,") {
			t.Errorf("boot partition mounted %q, want read-only", got)
		}
		if out, err := v.sh("systemctl is-active lablog-import-config.service"); err != nil || out != "active\n" {
			t.Errorf("import unit: %q %v", out, err)
		}
	})

	t.Run("appliance settings", func(t *testing.T) {
		if got := v.mustSh("findmnt -n -o LABEL,FSTYPE /media/lablog"); strings.Join(strings.Fields(got), " ") != "LABLOG ext4" {
			t.Errorf("archive mount: %q", got)
		}
		if got := v.mustSh("systemctl --failed --plain --no-legend"); strings.TrimSpace(got) != "" {
			t.Errorf("failed units:\n%s", got)
		}
		if got := v.mustSh("systemctl show -p RuntimeWatchdogUSec --value"); strings.TrimSpace(got) != "15s" {
			t.Errorf("RuntimeWatchdogUSec = %q", got)
		}
		if out, err := v.sh("sudo find /run/log/journal /var/log/journal -name '*.journal'"); err != nil ||
			!strings.Contains(out, "/run/log/journal/") || strings.Contains(out, "/var/log/journal/") {
			t.Errorf("journal is not in RAM only: %v\n%s", err, out)
		}
		if got := v.mustSh("cat /sys/class/watchdog/watchdog0/state"); got != "active\n" {
			t.Errorf("hardware watchdog state %q, want active (systemd's RuntimeWatchdogSec)", got)
		}
		if out, err := v.sh("sudo visudo -c -q"); err != nil {
			t.Errorf("visudo -c in the guest: %v %s", err, out)
		}
		if got := v.mustSh("sudo nft list tables"); !strings.Contains(got, "table inet lablog") {
			t.Errorf("nft tables: %q", got)
		}
		sshd := v.mustSh("sudo sshd -T")
		for _, want := range []string{"passwordauthentication no", "kbdinteractiveauthentication no", "permitrootlogin no"} {
			if !strings.Contains(sshd, want+"\n") {
				t.Errorf("sshd -T lacks %q", want)
			}
		}
		// Modes and owners of the overlay, as image/overlay.modes says.
		got := v.mustSh(`grep -v '^#' /usr/local/share/lablog/overlay.modes | while read -r m o p; do printf '%s %s\n' "$m $o" "$(sudo stat -c '%04a %U:%G' "$p")"; done`)
		for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != f[2] || f[1] != f[3] {
				t.Errorf("overlay file: want/got %q", line)
			}
		}
		if out, _ := v.sh("lsattr -d /media/lablog 2>&1; systemctl is-active lablog-archive-guard.service"); !strings.Contains(out, "active") {
			t.Logf("archive guard: %s", out)
		}
	})

	t.Run("relay host port closed from the network", func(t *testing.T) {
		// Inside the guest a listener answers on its network address at
		// 8888, as the relay host would; through the NIC it is dropped.
		probe := `python3 -c 'import urllib.request; print(urllib.request.urlopen("http://10.0.2.15:8888/", timeout=5).read().decode())'`
		v.waitFor("port 8888 listener up inside the guest", time.Minute, func() error {
			out, err := v.sh(probe)
			if err == nil && !strings.Contains(out, "relay host stand-in") {
				err = fmt.Errorf("answer %q", out)
			}
			return err
		})
		client := *httpClient
		client.Timeout = 8 * time.Second
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", v.relay))
		if err == nil {
			resp.Body.Close()
			t.Errorf("port 8888 answered through the network: HTTP %d", resp.StatusCode)
		}
	})

	t.Run("archive account is rsync read-only", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := append(v.sshArgs("archive_key"), "archive@127.0.0.1", "id")
		if out, _ := exec.CommandContext(ctx, "ssh", args...).CombinedOutput(); strings.Contains(string(out), "uid=") {
			t.Errorf("archive ran a shell command: %s", out)
		}
		src := filepath.Join(t.TempDir(), "intruder.txt")
		_ = os.WriteFile(src, []byte("x"), 0o644)
		ssh := "ssh " + strings.Join(v.sshArgs("archive_key"), " ")
		if out, err := exec.CommandContext(ctx, "rsync", "-e", ssh, src, "archive@127.0.0.1:/").CombinedOutput(); err == nil {
			t.Errorf("rsync could write to the archive: %s", out)
		}
	})

	// Compaction on demand, then the Parquet files come off with rsync and
	// this machine's lablog verifies them.
	v.mustSh("sudo systemctl kill -s USR1 lablog.service")
	pulled := filepath.Join(work, "pulled-1")
	v.waitFor("Parquet files for every stream on the LABLOG drive", 3*time.Minute, func() error {
		if err := v.pull(pulled); err != nil {
			return err
		}
		for _, s := range wantStreams {
			if m, _ := filepath.Glob(filepath.Join(pulled, "stream="+s, "date=*", "*.parquet")); len(m) == 0 {
				return fmt.Errorf("no Parquet file for %s yet", s)
			}
		}
		return nil
	})
	if out, err := exec.Command(lablog, "verify", pulled).CombinedOutput(); err != nil {
		t.Fatalf("lablog verify %s: %v\n%s", pulled, err, out)
	} else {
		t.Logf("boot 1: %s", strings.TrimSpace(string(out)))
	}

	// ---- power cut ----
	time.Sleep(2 * time.Second) // more frames committed after the compaction
	before, err := v.status()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("power cut with %d records committed in boot 1", before.Buffer.CommittedTotal)

	// ---- boot 2 ----
	v = startVM(t, work, 2)
	var after struct{ started time.Time }
	v.waitFor("lablog records again", 6*time.Minute, func() error {
		s, err := v.status()
		if err != nil {
			return err
		}
		if !s.StartedAt.After(before.StartedAt) {
			return fmt.Errorf("started_at %s is not after boot 1's %s", s.StartedAt, before.StartedAt)
		}
		if !s.Recording || s.Buffer.WriterError != "" {
			return fmt.Errorf("recording %v, writer error %q", s.Recording, s.Buffer.WriterError)
		}
		after.started = s.StartedAt
		return nil
	})
	v.waitFor("ssh", 2*time.Minute, func() error { _, err := v.sh("true"); return err })
	if out := v.mustSh("sudo ls -A /var/lib/lablog"); strings.Contains(out, "corrupt") {
		t.Errorf("the buffer was quarantined after the power cut: %s", out)
	}
	// Everything into the archive, then count boot 1's records.
	v.mustSh("sudo systemctl stop lablog-simlab.service lablog.service")
	v.mustSh("sudo -u lablog /usr/local/bin/lablog compact --open-hours --config /etc/lablog/lablog.yaml")
	pulled = filepath.Join(work, "pulled-2")
	if err := v.pull(pulled); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lablog, "verify", pulled).CombinedOutput(); err != nil {
		t.Fatalf("lablog verify after the power cut: %v\n%s", err, out)
	}
	boot1, gaps := countRecords(t, pulled, after.started)
	if boot1 < before.Buffer.CommittedTotal {
		t.Errorf("lost records: boot 1 committed %d (status just before the power cut), the archive holds %d of them",
			before.Buffer.CommittedTotal, boot1)
	} else {
		t.Logf("boot 1 committed %d records before the power cut; the archive holds %d", before.Buffer.CommittedTotal, boot1)
	}
	for _, g := range gaps {
		t.Error(g)
	}
}

// countRecords counts the records (distinct stream and seq) received before
// t, and reports any gap in a stream's sequence numbers.
func countRecords(t *testing.T, root string, before time.Time) (int64, []string) {
	t.Helper()
	seqs := map[string]map[int64]bool{}
	var n int64
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		rows, meta, err := archive.ReadRows(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if seqs[meta.Stream] == nil {
			seqs[meta.Stream] = map[int64]bool{}
		}
		for _, r := range rows {
			if seqs[meta.Stream][r.Seq] {
				continue
			}
			seqs[meta.Stream][r.Seq] = true
			if r.ReceivedAt < before.UnixMicro() {
				n++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var gaps []string
	for stream, set := range seqs {
		var all []int64
		for s := range set {
			all = append(all, s)
		}
		slices.Sort(all)
		if len(all) > 0 && all[len(all)-1]-all[0]+1 != int64(len(all)) {
			gaps = append(gaps, fmt.Sprintf("%s: %d sequence numbers from %d to %d: a gap", stream, len(all), all[0], all[len(all)-1]))
		}
	}
	return n, gaps
}
