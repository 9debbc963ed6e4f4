package main

import (
	"os"
	"runtime/debug"
)

// compactMemoryLimit is the Go runtime's soft memory limit for `lablog
// compact`. A compaction's live heap is about 26-30 MiB (a row group's
// column buffers, the zstd encoder, a scan batch) and none of it grows with
// the buffer; with the default GOGC the heap still doubled that between
// collections (63 MiB anonymous at the peak on 2M rows). With this limit the
// collector runs sooner instead: 72 MiB peak RSS against 96 MiB, for no CPU
// cost measurable on the bench's load (docs/performance-compaction.md).
const compactMemoryLimit = 48 << 20

// limitMemory sets the soft memory limit unless GOMEMLIMIT already does;
// restore puts back the previous one (tests run commands in-process).
func limitMemory(limit int64) (restore func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	return func() { debug.SetMemoryLimit(prev) }
}
