// Package failpoint stops the process at named points, so crash tests can
// cut the power at the exact windows that matter (between publish and
// delete, say), or hold the process there while they change the world under
// it (unmount the drive between two files).
//
// A failpoint is armed by the environment variable LABLOG_FAILPOINT, read
// once at start-up:
//
//	name              SIGKILL the process at the first Hit(name)
//	name:kill         the same
//	name:pause:<dir>  at every Hit(name), create <dir>/<name>.paused and
//	                  wait until <dir>/<name>.resume exists (see Resume)
//
// Unarmed, Hit costs one string comparison.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EnvVar names the environment variable that arms a failpoint.
const EnvVar = "LABLOG_FAILPOINT"

// Poll is how often a paused process looks for its resume file.
const Poll = 10 * time.Millisecond

// MaxPause bounds a pause, so a test that died cannot leave its child hung.
const MaxPause = 5 * time.Minute

// Suffixes of the files of a paused failpoint.
const (
	PausedSuffix = ".paused"
	ResumeSuffix = ".resume"
)

type spec struct {
	name  string
	pause string // directory of the pause files; "" kills
}

var armed = mustParse(os.Getenv(EnvVar))

var (
	mu   sync.Mutex // one pause at a time: they share the pause files
	hits int        // pauses so far, written to the .paused file
)

func parse(v string) (spec, error) {
	name, rest, _ := strings.Cut(v, ":")
	mode, dir, _ := strings.Cut(rest, ":")
	switch {
	case v == "":
		return spec{}, nil
	case name == "":
		return spec{}, errors.New("no failpoint name")
	case mode == "" || mode == "kill":
		if dir != "" {
			return spec{}, errors.New("kill takes no argument")
		}
		return spec{name: name}, nil
	case mode == "pause":
		if dir == "" {
			return spec{}, errors.New("pause needs a directory: name:pause:<dir>")
		}
		return spec{name: name, pause: dir}, nil
	}
	return spec{}, fmt.Errorf("unknown mode %q (want kill or pause)", mode)
}

// mustParse exits on a malformed setting: a test that armed a failpoint
// must not run on silently unarmed.
func mustParse(v string) spec {
	s, err := parse(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", EnvVar, v, err)
		os.Exit(2)
	}
	return s
}

// Hit stops the process at the named point when it is armed: SIGKILL, like
// a power cut, or a pause until the test resumes it.
func Hit(name string) {
	if armed.name == "" || armed.name != name {
		return
	}
	if armed.pause != "" {
		pause(armed.pause, name)
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; wait for it to land
}

// pause announces the pause, waits for the resume file, then removes both,
// the .paused file first: once the test sees .resume gone, a later .paused
// is a new hit.
func pause(dir, name string) {
	mu.Lock()
	defer mu.Unlock()
	hits++
	paused := filepath.Join(dir, name+PausedSuffix)
	resume := filepath.Join(dir, name+ResumeSuffix)
	// Written under another name and renamed, so the test never reads it half written.
	tmp := paused + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(hits)+"\n"), 0o644); err != nil || os.Rename(tmp, paused) != nil {
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

// WaitPaused waits until the process armed with name:pause:dir is paused at
// name and returns which pause it is (1 for the first Hit). For tests.
func WaitPaused(dir, name string, timeout time.Duration) (int, error) {
	paused := filepath.Join(dir, name+PausedSuffix)
	for deadline := time.Now().Add(timeout); ; time.Sleep(Poll) {
		b, err := os.ReadFile(paused)
		if err == nil {
			return strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("failpoint %s: not paused after %v", name, timeout)
		}
	}
}

// Resume lets the process paused at name go on, and waits until it has
// taken the resume file, so a following WaitPaused sees the next pause and
// not this one. For tests.
func Resume(dir, name string, timeout time.Duration) error {
	resume := filepath.Join(dir, name+ResumeSuffix)
	if err := os.WriteFile(resume, nil, 0o644); err != nil {
		return err
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(Poll) {
		if _, err := os.Stat(resume); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("failpoint %s: resume not taken after %v", name, timeout)
		}
	}
}
