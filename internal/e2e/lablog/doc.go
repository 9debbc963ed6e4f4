// Package lablog holds the suites that check the real lablog binary, built
// from ./cmd/lablog by internal/testing/lablogbin and run as a process:
// the compactor's memory, the resident memory of a busy recorder, the
// release build without failpoints, and the repository's make targets.
// Tests that call package main's functions stay in cmd/lablog.
package lablog
