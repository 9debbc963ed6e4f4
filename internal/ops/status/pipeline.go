package status

import (
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/source"
)

// Pipeline is what the status page reads from a running recorder. It is an
// interface so tests can drive every state with a fake, and so this package
// does not depend on the recorder (cmd/lablog adapts one to it). Every method must be
// cheap except Pending, which the Monitor calls only every few seconds.
type Pipeline interface {
	Sources() []source.Stats
	WriterStats() buffer.WriterStats
	BufferSize() int64
	Pending() ([]buffer.Pending, error)
	LastCompaction() compactor.Result
	// ActiveFaults lists the faults to show at now (see fault.Store.Active).
	ActiveFaults(now time.Time) []fault.Fault
	// FaultCounts is each kind's total count, for the metrics.
	FaultCounts() map[fault.Kind]int64
	// AckFaults acknowledges every fault reported so far.
	AckFaults(now time.Time) error
	// Provisioning is how each relay host's rules are kept (one entry per
	// host whose streams lablog provisions).
	Provisioning() []relay.ProvisionStats
	// Upload is the uploader's state; false when upload is off.
	Upload() (upload.Stats, bool)
}

// AnalyticsCounter is what a Pipeline may also offer: the counts of the
// live learning-analytics store. The Monitor reads them with the backlog,
// every few seconds.
type AnalyticsCounter interface {
	AnalyticsCounts() (analytics.Counts, error)
}
