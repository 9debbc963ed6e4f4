package status

import (
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/compactor"
	"github.com/practable/lablog/internal/fault"
	"github.com/practable/lablog/internal/recorder"
	"github.com/practable/lablog/internal/relay"
	"github.com/practable/lablog/internal/source"
)

// Pipeline is what the status page reads from a running recorder. It is an
// interface so tests can drive every state with a fake. Every method must be
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
}

// AnalyticsCounter is what a Pipeline may also offer: the counts of the
// live learning-analytics store. The Monitor reads them with the backlog,
// every few seconds.
type AnalyticsCounter interface {
	AnalyticsCounts() (analytics.Counts, error)
}

// ForRecorder adapts a recorder to Pipeline.
func ForRecorder(r *recorder.Recorder) Pipeline { return recorderPipeline{r} }

type recorderPipeline struct{ r *recorder.Recorder }

func (p recorderPipeline) Sources() []source.Stats            { return p.r.Sources() }
func (p recorderPipeline) WriterStats() buffer.WriterStats    { return p.r.Writer().Stats() }
func (p recorderPipeline) BufferSize() int64                  { return p.r.Buffer().Size() }
func (p recorderPipeline) Pending() ([]buffer.Pending, error) { return p.r.Buffer().Pending() }
func (p recorderPipeline) LastCompaction() compactor.Result   { return p.r.Compactor().Last() }
func (p recorderPipeline) ActiveFaults(now time.Time) []fault.Fault {
	return p.r.Faults().Active(now)
}
func (p recorderPipeline) FaultCounts() map[fault.Kind]int64 { return p.r.Faults().Counts() }
func (p recorderPipeline) AckFaults(now time.Time) error     { return p.r.Faults().Ack(now) }
func (p recorderPipeline) AnalyticsCounts() (analytics.Counts, error) {
	return p.r.Analytics().Counts()
}
func (p recorderPipeline) Provisioning() []relay.ProvisionStats {
	return p.r.Provisioning()
}
