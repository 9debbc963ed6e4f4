//go:build failpoint

package failpoint

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Enabled reports whether this binary was built with -tags failpoint.
const Enabled = true

// action is what an armed point does at a hit.
type action struct {
	kind  string // kill, pause, error, delay
	dir   string // pause: folder of the pause files
	text  string // error: the message
	base  time.Duration
	spike time.Duration
	pct   float64
}

var (
	armedMu sync.RWMutex
	armed   = mustParse(os.Getenv(EnvVar))

	pauseMu sync.Mutex // one pause at a time: they share the pause files
	pauses  int        // pauses so far, written to the .paused file
)

// parse reads a LABLOG_FAILPOINT value: name[:action[:argument]],...
func parse(v string) (map[string]action, error) {
	out := map[string]action{}
	if v == "" {
		return out, nil
	}
	for _, item := range strings.Split(v, ",") {
		name, rest, _ := strings.Cut(item, ":")
		kind, arg, hasArg := strings.Cut(rest, ":")
		if name == "" {
			return nil, fmt.Errorf("%q: no failpoint name", item)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%q: %s armed twice", item, name)
		}
		a := action{kind: kind}
		switch kind {
		case "", "kill":
			if hasArg {
				return nil, fmt.Errorf("%q: kill takes no argument", item)
			}
			a.kind = "kill"
		case "pause":
			if arg == "" {
				return nil, fmt.Errorf("%q: pause needs a folder: name:pause:<dir>", item)
			}
			a.dir = arg
		case "error":
			a.text = arg
		case "delay":
			var err error
			if a.base, a.spike, a.pct, err = parseDelay(arg); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
		default:
			return nil, fmt.Errorf("%q: unknown action %q (want kill, pause, error or delay)", item, kind)
		}
		out[name] = a
	}
	return out, nil
}

// parseDelay reads d or d+s@p: d on every hit, s more on p% of them.
func parseDelay(s string) (base, spike time.Duration, pct float64, err error) {
	b, sp, hasSpike := strings.Cut(s, "+")
	if base, err = time.ParseDuration(b); err != nil || base < 0 {
		return 0, 0, 0, errors.New("delay: want a duration like 10ms or 10ms+70ms@2")
	}
	if !hasSpike {
		return base, 0, 0, nil
	}
	d, p, ok := strings.Cut(sp, "@")
	if spike, err = time.ParseDuration(d); !ok || err != nil || spike < 0 {
		return 0, 0, 0, errors.New("delay: want a spike like +70ms@2 (on 2% of the hits)")
	}
	if pct, err = strconv.ParseFloat(p, 64); err != nil || pct < 0 || pct > 100 {
		return 0, 0, 0, errors.New("delay: spike percentage must be 0-100")
	}
	return base, spike, pct, nil
}

func mustParse(v string) map[string]action {
	m, err := parse(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", EnvVar, v, err)
		os.Exit(2)
	}
	return m
}

// Arm arms the points of spec (the LABLOG_FAILPOINT syntax) in this process,
// on top of those already armed, until disarm. For tests.
func Arm(spec string) (disarm func(), err error) {
	m, err := parse(spec)
	if err != nil {
		return nil, fmt.Errorf("failpoint: %w", err)
	}
	armedMu.Lock()
	defer armedMu.Unlock()
	next := make(map[string]action, len(armed)+len(m))
	for k, v := range armed {
		next[k] = v
	}
	for k, v := range m {
		next[k] = v
	}
	prev := armed
	armed = next
	return func() {
		armedMu.Lock()
		armed = prev
		armedMu.Unlock()
	}, nil
}

// Hit acts at the named point when it is armed: SIGKILL, like a power cut;
// a pause until the test resumes it; a delay; or an error to return.
func Hit(name string) error {
	armedMu.RLock()
	a, ok := armed[name]
	armedMu.RUnlock()
	if !ok {
		return nil
	}
	switch a.kind {
	case "pause":
		pause(a.dir, name)
	case "error":
		if a.text != "" {
			return fmt.Errorf("failpoint %s: %s: %w", name, a.text, ErrInjected)
		}
		return fmt.Errorf("failpoint %s: %w", name, ErrInjected)
	case "delay":
		d := a.base
		if a.pct > 0 && rand.Float64()*100 < a.pct {
			d += a.spike
		}
		time.Sleep(d)
	default:
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it to land
	}
	return nil
}

// pause announces the pause, waits for the resume file, then removes both,
// the .paused file first: once the test sees .resume gone, a later .paused
// is a new hit.
func pause(dir, name string) {
	pauseMu.Lock()
	defer pauseMu.Unlock()
	pauses++
	paused := filepath.Join(dir, name+PausedSuffix)
	resume := filepath.Join(dir, name+ResumeSuffix)
	// Written under another name and renamed, so the test never reads it
	// half written. Not internal/platform/atomicfile: that one hits failpoints, and
	// a pause file needs no fsync.
	tmp := paused + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pauses)+"\n"), 0o644); err != nil || os.Rename(tmp, paused) != nil {
		fmt.Fprintf(os.Stderr, "failpoint %s: cannot announce the pause in %s\n", name, dir)
		return
	}
	for deadline := time.Now().Add(MaxPause); time.Now().Before(deadline); time.Sleep(Poll) {
		if _, err := os.Stat(resume); err == nil {
			break
		}
	}
	_ = os.Remove(paused)
	_ = os.Remove(resume)
}
