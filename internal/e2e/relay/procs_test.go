package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/testkit"
)

// proc is one real process of a test (relay serve, relay host, relay
// client file, lablog run); its output goes to a log file that is shown
// when the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc runs bin with args and only the environment given (plus PATH
// and HOME), so nothing of the caller's RELAY_* or LABLOG_* leaks in.
func startProc(t *testing.T, name, logPath string, env []string, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: log file: %v", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	// The namespace dies with its last process; this makes sure a crashed
	// test leaves none behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- last lines of %s (%s):\n%s", name, logPath, tail(logPath, 15))
		}
	})
	return p
}

// stop ends p with SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.kill()
	}
}

// kill ends p at once, as a crash or a power cut would.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort gives each caller a loopback port of its own, below the
// kernel's ephemeral range: the tests run in parallel, and one that stops
// relay serve for an outage must get its ports back, which a port the
// kernel could hand out for another test's connection would not guarantee.
// The namespace is the tests' own, so nothing else binds there.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		port := firstPort + int(portsGiven.Add(1))
		if port >= ephemeralLow {
			t.Fatalf("free port: none left below the ephemeral range (%d)", ephemeralLow)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // held by someone: the next one
		}
		ln.Close()
		return port
	}
}

const firstPort = 10000

var (
	portsGiven   atomic.Int32
	ephemeralLow = ephemeralStart()
)

// ephemeralStart is the first port the kernel hands out for bind(0) and
// outgoing connections.
func ephemeralStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(data), &low, &high); err != nil {
		return 32768
	}
	return low
}

// pollEvery is how often the tests ask the real processes (over HTTP or
// TCP) whether something happened: no more often, so that asking does not
// take the CPU from the processes whose timing is measured.
const pollEvery = 50 * time.Millisecond

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// relayServe is the real `relay serve`: the access endpoint and the topic
// hub, on ports kept across restarts.
type relayServe struct {
	t          *testing.T
	dir        string
	secretFile string
	secret     string
	access     int
	hub        int
	p          *proc
	runs       int
}

func newServe(t *testing.T) *relayServe {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	s := &relayServe{t: t, dir: t.TempDir(), secret: hex.EncodeToString(b), access: freePort(t), hub: freePort(t)}
	s.secretFile = filepath.Join(s.dir, "secret")
	if err := os.WriteFile(s.secretFile, []byte(s.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	return s
}

// Base is the access base URL, which is also the tokens' audience.
func (s *relayServe) Base() string { return fmt.Sprintf("http://127.0.0.1:%d", s.access) }

// AccessURL is where a client of stream's logging topic asks to join.
func (s *relayServe) AccessURL(stream string) string { return s.Base() + "/session/" + stream + "-log" }

// start runs serve and returns once both its ports accept connections.
func (s *relayServe) start() time.Time {
	s.t.Helper()
	s.runs++
	s.p = startProc(s.t, fmt.Sprintf("relay serve #%d", s.runs), filepath.Join(s.dir, fmt.Sprintf("serve%d.log", s.runs)), []string{
		"RELAY_AUDIENCE=" + s.Base(),
		"RELAY_SECRET=" + s.secret,
		fmt.Sprintf("RELAY_PORT_ACCESS=%d", s.access),
		fmt.Sprintf("RELAY_PORT_RELAY=%d", s.hub),
		fmt.Sprintf("RELAY_URL=ws://127.0.0.1:%d", s.hub),
		"RELAY_PROFILE=false",
		"RELAY_LOG_FILE=stdout",
		"RELAY_LOG_FORMAT=text",
		"RELAY_LOG_LEVEL=warn",
	}, relayBin, "serve")
	if !testkit.PollEvery(15*time.Second, pollEvery, func() bool { return s.p.exited() || listening(s.access) && listening(s.hub) }) || s.p.exited() {
		s.t.Fatalf("relay serve did not listen on %d and %d within 15 s", s.access, s.hub)
	}
	return time.Now()
}

// tokens mints token files for streams with `lablog tokens` into dir.
func (s *relayServe) tokens(dir string, lifetime time.Duration, write bool, streams ...string) {
	s.t.Helper()
	args := []string{"tokens", "--secret-file", s.secretFile, "--access", s.Base(),
		"--streams", strings.Join(streams, ","), "--lifetime", lifetime.String(), "--out", dir}
	if write {
		args = append(args, "--write")
	}
	if out, err := exec.Command(lablogBin, args...).CombinedOutput(); err != nil {
		s.t.Fatalf("lablog tokens: %v\n%s", err, out)
	}
}

// token reads the token `lablog tokens` wrote for stream into dir.
func token(t *testing.T, dir, stream string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "log.token."+stream))
	if err != nil {
		t.Fatalf("token of %s: %v", stream, err)
	}
	return strings.TrimSpace(string(data))
}

// relayHost is the real `relay host`, as on the Pi.
type relayHost struct {
	t    *testing.T
	dir  string
	port int
	p    *proc
	runs int
}

func newHost(t *testing.T) *relayHost {
	t.Helper()
	h := &relayHost{t: t, dir: t.TempDir(), port: freePort(t)}
	h.start()
	return h
}

// URL is the host's base URL as lablog's relay_host takes it.
func (h *relayHost) URL() string { return fmt.Sprintf("ws://127.0.0.1:%d", h.port) }

// start runs the host and returns once /healthcheck answers.
func (h *relayHost) start() time.Time {
	h.t.Helper()
	h.runs++
	h.p = startProc(h.t, fmt.Sprintf("relay host #%d", h.runs), filepath.Join(h.dir, fmt.Sprintf("host%d.log", h.runs)),
		[]string{fmt.Sprintf("VW_PORT=%d", h.port)}, relayBin, "host")
	var last string
	ok := testkit.PollEvery(15*time.Second, pollEvery, func() bool {
		if h.p.exited() {
			return true
		}
		code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", h.port))
		last = fmt.Sprintf("%d %q %v", code, body, err)
		return err == nil && code == http.StatusOK
	})
	if !ok || h.p.exited() {
		h.t.Fatalf("relay host did not answer /healthcheck within 15 s (last: %s)", last)
	}
	return time.Now()
}

func get(url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// peer is `relay client file` on a stream's topic: the relay's own
// recorder, the yardstick lablog is held to.
type peer struct {
	stream string
	file   string
	p      *proc
}

func startPeer(t *testing.T, s *relayServe, stream, token string) *peer {
	t.Helper()
	dir := t.TempDir()
	pr := &peer{stream: stream, file: filepath.Join(dir, stream+".txt")}
	pr.p = startProc(t, "relay client file "+stream, filepath.Join(dir, "client.log"), []string{
		"RELAY_CLIENT_SESSION=" + s.AccessURL(stream),
		"RELAY_CLIENT_TOKEN=" + token,
		"RELAY_CLIENT_FILE=" + pr.file,
		"RELAY_CLIENT_MODE=text",
	}, relayBin, "client", "file")
	return pr
}

// lines reads what the peer wrote: one line per frame, "[RFC3339Nano] frame".
func (p *peer) lines() ([]received, error) {
	data, err := os.ReadFile(p.file)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("peer file %s: %w", p.file, err)
	}
	var out []received
	for _, line := range bytes.Split(data, []byte("\n")) {
		end := bytes.Index(line, []byte("] "))
		if len(line) == 0 || line[0] != '[' || end < 0 {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, string(line[1:end]))
		if err != nil {
			return nil, fmt.Errorf("peer file %s: line time: %w", p.file, err)
		}
		out = append(out, received{at: at, data: line[end+2:]})
	}
	return out, nil
}

// received is a frame as a recorder got it.
type received struct {
	at   time.Time
	data []byte
}
