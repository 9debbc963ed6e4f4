// Package failpoint kills the process at named points, so crash tests can cut
// the power at the exact windows that matter (between publish and delete, say).
// A failpoint is armed by the environment variable LABLOG_FAILPOINT=name, read
// once at start-up; unarmed, Hit costs one string comparison.
package failpoint

import (
	"os"
	"syscall"
)

// EnvVar names the environment variable that arms a failpoint.
const EnvVar = "LABLOG_FAILPOINT"

var armed = os.Getenv(EnvVar)

// Hit kills the process with SIGKILL, like a power cut, when name is armed.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; wait for it to land
}
