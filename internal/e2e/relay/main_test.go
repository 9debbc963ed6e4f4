package relay

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/practable/lablog/internal/testing/lablogbin"
)

// insideEnv marks the test binary re-executed inside its network
// namespace; its value is the lablog binary the outer run built.
const insideEnv = "LABLOG_RELAYCONF_INSIDE"

var (
	relayBin  string // the real relay, from RELAY_BIN
	lablogBin string // lablog built from this tree
	// unavailable says why the tests cannot run here; empty when they can.
	unavailable string
	// broken is a failure to set the tests up where they could run.
	broken error
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(setup(m))
}

// setup re-executes the test binary in a new network namespace when it can
// (exec does not return then), or records why the tests cannot run.
func setup(m *testing.M) int {
	bin := os.Getenv("RELAY_BIN")
	switch {
	case testing.Short():
		unavailable = "-short: the real relay tests run processes for minutes"
	case bin == "":
		unavailable = "RELAY_BIN is unset: build the relay with ../shared/relay/build.sh /tmp/relay, then RELAY_BIN=/tmp/relay go test ./internal/e2e/relay"
	case os.Getenv(insideEnv) != "":
		relayBin, lablogBin = bin, os.Getenv(insideEnv)
		broken = onlyLoopback()
		code := m.Run()
		os.RemoveAll(filepath.Dir(lablogBin))
		return code
	case os.Geteuid() != 0:
		unavailable = "not root: the real relay tests need a network namespace of their own (unshare --net)"
	default:
		broken = reexec(bin)
	}
	return m.Run()
}

// reexec builds lablog (the module proxy is out of reach inside the
// namespace) and replaces this process by itself inside `unshare --net`.
func reexec(bin string) error {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return fmt.Errorf("RELAY_BIN %s: %w", bin, err)
	}
	if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("RELAY_BIN %s is not an executable file (%v)", abs, err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		unavailable = "unshare (util-linux) is needed for a network namespace"
		return nil
	}
	if out, err := exec.Command(unshare, "--net", "true").CombinedOutput(); err != nil {
		unavailable = fmt.Sprintf("unshare --net does not work here: %v: %s", err, out)
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the test binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "relayconf-bin-")
	if err != nil {
		return fmt.Errorf("temp dir for lablog: %w", err)
	}
	lablog, err := lablogbin.Build(dir, false)
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("build lablog: %w", err)
	}
	script := `PATH="$PATH:/usr/sbin:/sbin"; ip link set lo up && exec "$0" "$@"`
	args := append([]string{"unshare", "--net", "--", "sh", "-c", script, self}, os.Args[1:]...)
	env := append(os.Environ(), insideEnv+"="+lablog, "RELAY_BIN="+abs)
	err = syscall.Exec(unshare, args, env)
	os.RemoveAll(dir)
	return fmt.Errorf("exec unshare: %w", err)
}

// onlyLoopback checks that the namespace holds lo and nothing else, so no
// process of the tests can be reached from, or reach, a network.
func onlyLoopback() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("interface %s in the test's network namespace: only lo may be there", i.Name)
		}
		if i.Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo is down in the test's network namespace")
		}
	}
	return nil
}

// need skips t when the real relay cannot be run here, and fails it
// instead under CI=true, where the tests must run.
func need(t *testing.T) {
	t.Helper()
	if broken != nil {
		t.Fatal(broken)
	}
	if unavailable == "" {
		return
	}
	if os.Getenv("CI") == "true" && !testing.Short() {
		t.Fatalf("CI=true, but the real relay tests cannot run: %s", unavailable)
	}
	t.Skip(unavailable)
}
