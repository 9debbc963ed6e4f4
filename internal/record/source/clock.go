package source

import (
	"sync/atomic"
	"time"
)

// SystemNow is the default Config.Now: the wall clock and ClockSynced.
// ClockSynced is a system call, and Now runs for every frame, so its answer
// is reused for up to syncCheckEvery: a clock that syncs is marked so in
// the records within a second.
func SystemNow() (time.Time, bool) {
	now := time.Now()
	mono := time.Since(processStart)
	if next := syncNext.Load(); int64(mono) >= next {
		// Several goroutines may check at once; any of their answers will do.
		syncOK.Store(ClockSynced())
		syncNext.Store(int64(mono + syncCheckEvery))
	}
	return now, syncOK.Load()
}

// syncCheckEvery is how long SystemNow reuses a ClockSynced answer.
const syncCheckEvery = time.Second

var (
	processStart = time.Now() // origin of the monotonic times below
	syncNext     atomic.Int64 // when to ask ClockSynced again (since processStart)
	syncOK       atomic.Bool  // its last answer
)
