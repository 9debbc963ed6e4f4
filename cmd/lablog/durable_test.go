package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// The tests in this file break the durability promise the ways an
// independent test of format 1 did, on the real binary: a fresh buffer
// beside an archive, a torn buffer, a drive pulled mid-compaction, flipped
// bytes in the buffer.

var durableStreams = []string{"spin30", "spin31", "spin32", "pend00"}

// site is a configured lablog with its own lab, buffer and archive.
type site struct {
	dir, cfg, buf, root string
	host                *labsim.Host
	next                map[string]int // next message number per stream
}

func newSite(t *testing.T, root string) *site { return newSiteWith(t, root, "") }

// newSiteWith is newSite with extra compaction keys.
func newSiteWith(t *testing.T, root, compaction string) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, buf: filepath.Join(dir, "buffer.db"), root: root, host: newTestHost(t), next: map[string]int{}}
	if s.root == "" {
		s.root = filepath.Join(dir, "archive")
		if err := os.Mkdir(s.root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.root, archive.MarkerFile), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`buffer: {path: %s}
archive: {path: %s, require: marker}
compaction: {interval: 1h, grace: 10m, retry: 1h%s}
sources: {min_backoff: 50ms, max_backoff: 200ms}
status: {listen: "127.0.0.1:0"}
led: {path: ""}
streams:
`, s.buf, s.root, compaction)
	for _, n := range durableStreams {
		cfg += fmt.Sprintf("  - {name: %s, relay_host: %s}\n", n, s.host.URL())
	}
	s.cfg = filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// message is the exact frame a site sends as message n of stream, with a
// random-looking number, as lab UIs send.
func message(stream string, n int) string {
	return fmt.Sprintf(`{"user":"u%d","t":%d,"exp":"spinner","hardware":"%s","type":"log","payload":{"n":%d,"data":%.5f}}`,
		n%9, 1764165600000+n*41, stream, n, float64((n*7919)%100000)/997)
}

// record starts the daemon, sends n messages per stream once it is
// connected, waits until they are committed, and stops it.
func (s *site) record(t *testing.T, n int, env ...string) *daemon {
	t.Helper()
	cmd, d := startBinaryEnv(t, s.cfg, env)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range durableStreams {
		if err := s.host.WaitClients(ctx, name, 1); err != nil {
			t.Fatalf("%v\n%s", err, d.logs)
		}
	}
	before := d.status(t).Buffer.CommittedTotal
	for i := 0; i < n; i++ {
		for _, name := range durableStreams {
			s.host.Publish(name, []byte(message(name, s.next[name])), false)
			s.next[name]++
		}
	}
	testkit.Eventually(t, 30*time.Second, "every message committed", func() bool {
		return d.status(t).Buffer.CommittedTotal >= before+int64(n*len(durableStreams))
	})
	stopBinary(t, cmd, d)
	return d
}

// archiveHoldsExactly checks that the archive verifies and holds every
// message sent, once, byte for byte, and nothing else.
func (s *site) archiveHoldsExactly(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(lablogBinary(t), "verify", s.root).CombinedOutput(); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	counts := map[messageID]int{}
	genuine(t, s.root, counts)
	missing, dups := 0, 0
	for name, n := range s.next {
		for i := range n {
			switch counts[messageID{name, i}] {
			case 0:
				missing++
			case 1:
			default:
				dups++
			}
		}
	}
	if missing+dups > 0 || len(counts) != 4*s.next["spin30"] {
		t.Fatalf("archive: %d of %d messages missing, %d duplicated, %d distinct",
			missing, 4*s.next["spin30"], dups, len(counts))
	}
}

// genuine counts the archived messages and fails on any whose bytes are
// not exactly what was sent.
func genuine(t *testing.T, root string, counts map[messageID]int) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		rows, _, err := archive.ReadRows(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		stream := filepath.Base(filepath.Dir(filepath.Dir(path)))[len("stream="):]
		for _, r := range rows {
			if r.Kind != archive.KindMessage {
				continue
			}
			raw := string(r.RawBytes)
			if r.Raw != nil {
				raw = *r.Raw
			}
			var n int
			i := strings.Index(raw, `"n":`)
			if i < 0 {
				return fmt.Errorf("%s: a row that was never sent: %q", path, raw)
			}
			if _, err := fmt.Sscanf(raw[i:], `"n":%d`, &n); err != nil || raw != message(stream, n) {
				return fmt.Errorf("%s: message %d of %s archived as %q, sent as %q", path, n, stream, raw, message(stream, n))
			}
			counts[messageID{stream, n}]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *site) compact(t *testing.T) string {
	t.Helper()
	out, code := s.compactStatus(t)
	if code != 0 {
		t.Fatalf("compact: exit %d\n%s", code, out)
	}
	return out
}

// compactStatus runs lablog compact and returns its output and exit status.
func (s *site) compactStatus(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(lablogBinary(t), "compact", "--config", s.cfg, "--open-hours")
	out, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		t.Fatalf("compact: %v\n%s", err, out)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// startBinaryEnv is startBinary with extra environment variables for the
// daemon alone (a failpoint armed for it must not reach later commands).
func startBinaryEnv(t *testing.T, cfgPath string, env []string) (*exec.Cmd, *daemon) {
	t.Helper()
	d := &daemon{logs: &testkit.LogBuffer{}}
	cmd := exec.Command(lablogBinary(t), "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testkit.Eventually(t, 20*time.Second, "the status page's address in the log", func() bool {
		m := statusURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			d.url = m[1]
		}
		return m != nil
	})
	return cmd, d
}

// TestFreshBufferBesideTheArchive: format 1 restarted seqs at 1 in a new
// buffer and its crash repair deleted the new records as "already archived".
func TestFreshBufferBesideTheArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary several times")
	}
	for _, how := range []string{"deleted", "zero-length", "quarantined"} {
		t.Run(how, func(t *testing.T) {
			s := newSite(t, "")
			s.record(t, 150)
			s.compact(t) // the archive now holds seqs 1-151 of each stream's hour
			switch how {
			case "deleted":
				if err := os.Remove(s.buf); err != nil {
					t.Fatal(err)
				}
			case "zero-length":
				if err := os.Truncate(s.buf, 0); err != nil {
					t.Fatal(err)
				}
			case "quarantined":
				if err := os.WriteFile(s.buf, []byte(strings.Repeat("not bbolt ", 5000)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s.record(t, 200) // seqs 1-... again, same hour
			s.compact(t)
			s.archiveHoldsExactly(t)
		})
	}
}

// TestTornBufferKeepsRecording: a buffer cut short by a power cut made
// bbolt die of SIGBUS at every start.
func TestTornBufferKeepsRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary several times")
	}
	for _, size := range []int64{64 << 10, 256 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := newSite(t, "")
			// Enough that the pages in use reach past the cut (blocks are
			// compressed, so this takes more messages than bytes suggest).
			for i := 0; ; i++ {
				s.record(t, 1500)
				if inUse(t, s.buf) > int(size)+64<<10 {
					break
				}
				if i == 10 {
					t.Fatalf("the buffer's pages in use stay under %d bytes", size)
				}
			}
			if err := os.Truncate(s.buf, size); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			d := s.record(t, 10) // must start, record and stop cleanly
			took := time.Since(start)
			if !strings.Contains(d.logs.String(), "quarantined") {
				t.Fatalf("no quarantine logged:\n%s", d.logs)
			}
			t.Logf("torn at %d bytes: quarantined, recording again, 10 messages per stream committed, stopped, in %v", size, took)
			faults, err := os.ReadFile(filepath.Join(s.dir, fault.FileName))
			if err != nil || !strings.Contains(string(faults), string(fault.BufferQuarantined)) {
				t.Fatalf("faults.json: %v %s", err, faults)
			}
		})
	}
}

// TestFlippedBytesNeverArchived: format 1 archived damaged payloads with a
// fresh, valid checksum.
func TestFlippedBytesNeverArchived(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary several times")
	}
	s := newSite(t, "")
	s.record(t, 1000)
	clean, err := os.ReadFile(s.buf)
	if err != nil {
		t.Fatal(err)
	}
	used := inUse(t, s.buf)
	var noticed int
	for i := range 10 {
		rng := rand.New(rand.NewPCG(uint64(i), 5))
		damaged := append([]byte(nil), clean...)
		for range 10 {
			off := 8192 + rng.IntN(used-8192-64)
			for j := range 64 {
				damaged[off+j] = byte(rng.Uint32())
			}
		}
		if err := os.WriteFile(s.buf, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, e := range []string{s.root, filepath.Join(s.dir, "damaged")} {
			_ = os.RemoveAll(e)
		}
		_ = os.Mkdir(s.root, 0o755)
		_ = os.WriteFile(filepath.Join(s.root, archive.MarkerFile), nil, 0o644)
		out, code := s.compactStatus(t)
		counts := map[messageID]int{}
		genuine(t, s.root, counts) // fails on any altered message
		for id, n := range counts {
			if n != 1 {
				t.Fatalf("run %d: message %v archived %d times", i, id, n)
			}
		}
		asideFiles, _ := filepath.Glob(filepath.Join(s.dir, "damaged", "*.block"))
		quarantined, _ := filepath.Glob(s.buf + ".corrupt-*")
		if strings.Contains(out, "damaged records in") || len(asideFiles) > 0 || len(quarantined) > 0 {
			noticed++
		}
		if strings.Contains(out, "damaged records in") != (len(asideFiles) > 0) {
			t.Fatalf("run %d: output %q but %d set-aside files", i, out, len(asideFiles))
		}
		// Exit 3 exactly when records missed the archive, 0 otherwise.
		if want := map[bool]int{false: 0, true: exitProblems}[len(asideFiles) > 0 || len(quarantined) > 0]; code != want {
			t.Fatalf("run %d: exit %d, want %d (%d set aside, quarantined %v)\n%s", i, code, want, len(asideFiles), quarantined, out)
		}
		for _, q := range quarantined {
			_ = os.Remove(q)
		}
		t.Logf("run %d: %d of %d messages archived, %d blocks set aside, quarantined %v", i, len(counts), 4000, len(asideFiles), len(quarantined) > 0)
	}
	if noticed == 0 {
		t.Fatal("100 random 64-byte writes and no damage noticed: the test is not reaching the data")
	}
}

// inUse is the end of the buffer file's pages in use, so damage lands on
// live data rather than on the free space at the end of the file.
func inUse(t *testing.T, path string) int {
	t.Helper()
	n, err := buffer.InUse(path)
	if err != nil || n <= 8192+64 {
		t.Fatalf("cannot tell the used part of the buffer: %d bytes, %v", n, err)
	}
	return int(n)
}

// TestDrivePulledMidCompaction lazily unmounts a loop-mounted ext4 archive
// while the daemon is between two files of a compaction run: format 1 went
// on writing under the bare mount point, on the SD card.
func TestDrivePulledMidCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root and loop devices")
	}
	mnt, remount := loopDrive(t)
	s := newSiteWith(t, mnt, ", open_hours: true")
	pause := t.TempDir()
	s.record(t, 100) // its start-up compaction finds an empty buffer
	// The next start's compaction archives the four streams' hour.
	cmd, d := startBinaryEnv(t, s.cfg, []string{failpoint.EnvVar + "=" + compactor.FailBeforeFile + ":pause:" + pause})
	for hit := 1; hit <= 2; hit++ {
		if got, err := failpoint.WaitPaused(pause, compactor.FailBeforeFile, 30*time.Second); err != nil || got != hit {
			t.Fatalf("pause %d: hit %d, %v\n%s", hit, got, err, d.logs)
		}
		if hit == 2 { // one file published; pull the drive before the next
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				t.Fatalf("umount -l: %v %s", err, out)
			}
		}
		if err := failpoint.Resume(pause, compactor.FailBeforeFile, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 30*time.Second, "the run to fail on the pulled drive", func() bool {
		return strings.Contains(d.logs.String(), "compaction failed")
	})
	stopBinary(t, cmd, d)
	var leaked []string
	_ = filepath.WalkDir(mnt, func(path string, e fs.DirEntry, err error) error {
		if path != mnt {
			leaked = append(leaked, path)
		}
		return nil
	})
	if len(leaked) > 0 {
		t.Fatalf("written to the SD card under the bare mount point: %v\n%s", leaked, d.logs)
	}
	remount()
	s.compact(t)
	s.archiveHoldsExactly(t)
}

// loopDrive makes and mounts a small ext4 archive drive with the marker; the
// returned function mounts it again after a test unmounted it.
func loopDrive(t *testing.T) (mnt string, remount func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting a drive needs root")
	}
	base := t.TempDir()
	img := filepath.Join(base, "drive.img")
	mnt = filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mount := func() {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("mount: %v\n%s", err, out)
			}
			t.Skipf("cannot loop-mount here: %v\n%s", err, out)
		}
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	mount()
	t.Cleanup(func() {
		for range 3 {
			if exec.Command("umount", "-l", mnt).Run() != nil {
				return
			}
		}
	})
	if err := os.WriteFile(filepath.Join(mnt, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return mnt, mount
}
