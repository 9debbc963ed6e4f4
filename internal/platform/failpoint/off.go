//go:build !failpoint

package failpoint

import "errors"

// Enabled reports whether this binary was built with -tags failpoint.
const Enabled = false

// Hit does nothing in a release build.
func Hit(string) error { return nil }

// Arm fails in a release build: there are no failpoints to arm.
func Arm(string) (disarm func(), err error) {
	return nil, errors.New("failpoints: this binary was built without -tags failpoint")
}
