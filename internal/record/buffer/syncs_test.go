package buffer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/record/frame"
)

// TestFsyncFailpoint: a delay armed at FailFsync holds both fsyncs of each
// commit; an error fails the commit, which leaves nothing behind.
func TestFsyncFailpoint(t *testing.T) {
	needFailpoints(t)
	db := openTest(t)
	disarm, err := failpoint.Arm(FailFsync + ":delay:20ms")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const commits = 5
	for i := range commits {
		if err := db.Append([]frame.Record{rec("s", t0, fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Two delayed fsyncs per commit.
	if took, min := time.Since(start), commits*2*20*time.Millisecond; took < min {
		t.Errorf("%d commits took %v with 20 ms fsyncs; want at least %v", commits, took, min)
	}
	disarm()

	disarm, err = failpoint.Arm(FailFsync + ":error")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Append([]frame.Record{rec("s", t0, "lost")}); !errors.Is(err, failpoint.ErrInjected) {
		t.Errorf("Append with a failing fsync = %v, want the injected error", err)
	}
	disarm()
	if err := db.Append([]frame.Record{rec("s", t0, "after")}); err != nil {
		t.Fatalf("Append after the failed commit: %v", err)
	}
	if got := scanAll(t, db, "s", t0); len(got) != commits+1 || string(got[commits].rec.Data) != "after" {
		t.Errorf("buffer holds %d records after %d commits, a failed one and one more; want %d", len(got), commits, commits+1)
	}
}

// helperEnv makes the test binary act as a process that commits to a
// buffer and prints its own fsync count, for TestFsyncCountMatchesStrace.
const helperEnv = "LABLOG_TEST_FSYNC_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(fsyncHelper(path))
	}
	os.Exit(m.Run())
}

func fsyncHelper(path string) int {
	db, err := Open(path, Options{InitialMmapSize: 1 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	data := strings.Repeat("x", 3000) // the file grows several times
	for i := range 300 {
		batch := make([]frame.Record, 1+i%7)
		for j := range batch {
			batch[j] = rec(fmt.Sprintf("s%d", j), t0, data)
		}
		if err := db.Append(batch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if _, err := db.Settle(group(db, "s0", t0), 1, 100); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(db.Fsyncs())
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestFsyncCountMatchesStrace checks the in-process fsync count against the
// fsync and fdatasync system calls the kernel sees, since the count is kept
// by a model of what bbolt does rather than by wrapping its calls.
func TestFsyncCountMatchesStrace(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("strace is needed in CI:", err)
		}
		t.Skip("strace not installed")
	}
	if os.Getenv("LABLOG_TEST_EXEC") != "" {
		t.Skip("strace cannot trace through qemu-user")
	}
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", trace, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+filepath.Join(dir, "buffer.db"))
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("strace cannot trace here (%v): %s", err, out)
	}
	counted, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("helper printed %q", out)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "fsync(") || strings.Contains(sc.Text(), "fdatasync(") {
			seen++
		}
	}
	t.Logf("buffer counted %d fsyncs, strace saw %d", counted, seen)
	// Close makes no fsync, Open makes one transaction (the bucket) plus
	// bbolt's initial file set-up; the count starts after Open returns.
	if counted < 600 || seen < counted || seen > counted+8 {
		t.Errorf("buffer counted %d fsyncs; strace saw %d (want the count, plus only Open's few)", counted, seen)
	}
}

// needFailpoints skips t in a test binary built without -tags failpoint,
// or fails it when LABLOG_REQUIRE_FAILPOINT=1 (not testkit.NeedFailpoints:
// testkit imports buffer).
func needFailpoints(t *testing.T) {
	t.Helper()
	if !failpoint.Enabled {
		if os.Getenv("LABLOG_REQUIRE_FAILPOINT") == "1" {
			t.Fatal("LABLOG_REQUIRE_FAILPOINT=1 but this test binary was built without -tags failpoint")
		}
		t.Skip("needs failpoints: go test -tags failpoint")
	}
}
