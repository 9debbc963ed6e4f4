//go:build !linux

package source

// ClockSynced reports true: without adjtimex there is nothing to check, and
// development machines keep their clocks synced.
func ClockSynced() bool { return true }
