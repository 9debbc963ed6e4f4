// Package failpoint stops, slows or fails the process at named points, so
// crash tests can cut the power at the exact windows that matter (between
// publish and delete, say), hold the process there while they change the
// world under it (unmount the drive between two files), make a step fail,
// or make a fast disk as slow as an SD card.
//
// Failpoints exist only in a binary built with -tags failpoint (tests and
// benchmarks). In the release build Hit is an empty function and nothing
// reads the environment.
//
// In a failpoint build, the environment variable LABLOG_FAILPOINT, read once
// at start-up, arms a comma-separated list of points:
//
//	name                 SIGKILL the process at the first Hit(name)
//	name:kill            the same
//	name:pause:<dir>     at every Hit(name), create <dir>/<name>.paused and
//	                     wait until <dir>/<name>.resume exists (see Resume)
//	name:error[:<text>]  every Hit(name) returns an error (ErrInjected)
//	name:delay:<d>       every Hit(name) sleeps d (a Go duration, 10ms);
//	name:delay:<d>+<s>@<p>  and s more on p% of the hits (10ms+70ms@2)
//
// A malformed setting exits the process with status 2: a test that armed a
// failpoint must not run on silently unarmed.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AtExit is hit by lablog's main as the process is about to exit, all its
// work done and its files closed. A test pauses it there to read the
// process's own peak memory (VmHWM) from /proc: the rusage of a child
// cannot give it, since Go starts children with vfork and Linux then
// counts the parent's resident set at the exec into the child's maxrss.
const AtExit = "exit"

// EnvVar names the environment variable that arms failpoints.
const EnvVar = "LABLOG_FAILPOINT"

// VersionNote is the line `lablog version` adds in a failpoint build, so a
// harness (lablog bench) can tell such a binary from a release one.
const VersionNote = "failpoints: compiled in (a test build, not for release)"

// ErrInjected is wrapped by the errors of an armed name:error point.
var ErrInjected = errors.New("injected failure")

// Poll is how often a paused process looks for its resume file.
const Poll = 10 * time.Millisecond

// MaxPause bounds a pause, so a test that died cannot leave its child hung.
const MaxPause = 5 * time.Minute

// Suffixes of the files of a paused failpoint.
const (
	PausedSuffix = ".paused"
	ResumeSuffix = ".resume"
)

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
