package source

import "golang.org/x/sys/unix"

// ClockSynced reports whether the kernel considers the system clock
// synchronised (by NTP or similar). A Pi has no RTC, so until it syncs its
// clock resumes from the last saved time and records must say so.
func ClockSynced() bool {
	var tx unix.Timex // Modes 0: read only, needs no privilege
	if _, err := unix.Adjtimex(&tx); err != nil {
		return false
	}
	return tx.Status&unix.STA_UNSYNC == 0
}
