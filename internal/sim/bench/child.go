package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is a real `lablog run` recording the bench server's streams.
type child struct {
	cmd    *exec.Cmd
	dir    string
	base   string // http://127.0.0.1:port of its status server
	mem    *memSampler
	done   chan struct{}
	errLog string
}

// freePort asks the kernel for a free loopback port for the child.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// command makes the child's command line, under an emulator when set.
func (o *Options) command(ctx context.Context, args ...string) *exec.Cmd {
	if o.Exec != "" {
		f := strings.Fields(o.Exec)
		return exec.CommandContext(ctx, f[0], append(append(f[1:], o.Binary), args...)...)
	}
	return exec.CommandContext(ctx, o.Binary, args...)
}

// startChild writes a configuration for names on s and starts lablog run
// with extra environment (LABLOG_FAILPOINT for the slow disk).
func startChild(ctx context.Context, o *Options, dir string, s *server, names []string, env ...string) (*child, error) {
	var b strings.Builder
	b.WriteString("streams:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - {name: %s, url: %q}\n", n, s.url(n))
	}
	return launchChild(ctx, o, dir, "", b.String(), env...)
}

// launchChild starts lablog run on a configuration of its own buffer (with
// bufferKeys, YAML flow keys like "commit_interval: 0s"), archive and status
// server, followed by sections (YAML: streams, addlog).
func launchChild(ctx context.Context, o *Options, dir, bufferKeys, sections string, env ...string) (*child, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "archive"), 0o750); err != nil {
		return nil, fmt.Errorf("child archive: %w", err)
	}
	var b strings.Builder
	if bufferKeys != "" {
		bufferKeys = ", " + bufferKeys
	}
	fmt.Fprintf(&b, "buffer: {path: %q%s}\narchive: {path: %q, require: none}\n", filepath.Join(dir, "buffer.db"), bufferKeys, filepath.Join(dir, "archive"))
	fmt.Fprintf(&b, "status: {listen: %q}\nled: {path: \"\"}\n%s", addr, sections)
	cfg := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("child config: %w", err)
	}
	errLog := filepath.Join(dir, "lablog.log")
	logf, err := os.Create(errLog)
	if err != nil {
		return nil, fmt.Errorf("child log: %w", err)
	}
	defer logf.Close()
	// Not CommandContext: the child is stopped with SIGTERM by stop, in order.
	cmd := o.command(context.WithoutCancel(ctx), "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	c := &child{cmd: cmd, dir: dir, base: "http://" + addr, done: make(chan struct{}), errLog: errLog}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	c.mem = sampleMemory(ctx, cmd.Process.Pid)
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// logTail is the end of the child's log, for errors.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.errLog)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// ready waits until the child serves its metrics and has committed at least
// want records (the connection events of its streams), queue empty.
func (c *child) ready(ctx context.Context, s *server, names []string, want float64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.waitClients(ctx, names); err != nil {
		return c.failed(err)
	}
	return c.await(ctx, func(k counters) bool { return k.Committed >= want && k.QueueDepth == 0 })
}

// await polls the child's metrics until cond holds or ctx ends.
func (c *child) await(ctx context.Context, cond func(counters) bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		k, err := scrape(ctx, c.base)
		if err == nil && cond(k) {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-c.done:
			return c.failed(errors.New("lablog exited"))
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return c.failed(fmt.Errorf("waiting for lablog: %w", last))
		case <-tick.C:
		}
	}
}

func (c *child) failed(err error) error {
	return fmt.Errorf("%w\nlablog log (end):\n%s", err, c.logTail())
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (c *child) stop() {
	defer c.mem.close()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// awaitURL polls url until it answers 200 or ctx ends.
func (c *child) awaitURL(ctx context.Context, url string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := get(ctx, url)
		if err == nil {
			return nil
		}
		select {
		case <-c.done:
			return c.failed(errors.New("lablog exited"))
		case <-ctx.Done():
			return c.failed(fmt.Errorf("waiting for %s: %w", url, err))
		case <-tick.C:
		}
	}
}
