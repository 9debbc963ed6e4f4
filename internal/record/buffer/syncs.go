package buffer

import "sync/atomic"

// FailFsync is the failpoint at each of the two fsyncs of a commit. Armed
// with a delay it shows on a fast disk how lablog behaves on an SD card:
// buffer-fsync:delay:10ms adds 10 ms to each fsync, buffer-fsync:delay:10ms+70ms@2
// also adds a 70 ms spike to 2% of them (lablog bench, slow disk).
const FailFsync = "buffer-fsync"

// syncCounter counts the buffer's fsyncs. bbolt gives no hook around its
// own fdatasync calls, so they are counted the way bbolt makes them: two per
// write transaction (the data pages, then the meta page) and one more when
// the file grew (bbolt syncs the new size). A test checks the count against
// the fsync system calls that strace sees.
type syncCounter struct{ n atomic.Int64 }

func (c *syncCounter) committed(grew bool) {
	n := int64(2)
	if grew {
		n++
	}
	c.n.Add(n)
}
