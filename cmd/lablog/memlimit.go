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
// collector runs sooner instead: 70 MiB peak RSS against 94 MiB on 2M rows,
// for a few percent of CPU (the collector took 5-7% of it on a 10M-row
// buffer; docs/performance-compaction.md).
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
