package source

import "time"

// SystemNow is the default Config.Now: the wall clock and ClockSynced.
func SystemNow() (time.Time, bool) { return time.Now(), ClockSynced() }
