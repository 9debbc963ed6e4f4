package buffer

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMap drops the pages of tx's database map from this process's
// resident set. bbolt reads through a shared read-only map, so every page a
// transaction touched stays resident (file-backed) until the map goes: a
// scan of the whole buffer would make the process as large as the file,
// and the peak would grow with the buffer. The pages stay in the kernel's
// page cache; a later read maps them again without I/O. It must run inside
// a transaction: a read transaction holds off bbolt's remap, and so does a
// write transaction's function (only its commit may grow the map).
func releaseMap(tx *bolt.Tx) {
	info := tx.DB().Info()
	size := tx.Size()
	if info == nil || info.Data == 0 || size <= 0 {
		return
	}
	// MADV_DONTNEED on a shared file map only unmaps: no data can be lost.
	// Errors are ignored: the pages then stay resident, as before.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED)
}

// releaseEvery is how often releaseWhile drops the pages read so far.
const releaseEvery = 10 * time.Millisecond

// releaseWhile runs fn, which reads through tx's map, dropping the pages
// read so far every releaseEvery: the consistency check at open reads every
// page of the file in one go, and would otherwise make the process as
// large as the buffer before anything is archived. tx stays open
// throughout, so the map cannot move under the other goroutine.
func releaseWhile(tx *bolt.Tx, fn func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(releaseEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				releaseMap(tx)
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	releaseMap(tx)
}
