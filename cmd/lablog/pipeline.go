package main

import (
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/record/source"
)

// recorderPipeline is a recorder as the status page reads it.
type recorderPipeline struct{ r *recorder.Recorder }

var _ status.Pipeline = recorderPipeline{}

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
func (p recorderPipeline) Provisioning() []relay.ProvisionStats {
	return p.r.Provisioning()
}
func (p recorderPipeline) Upload() (upload.Stats, bool) {
	if u := p.r.Uploader(); u != nil {
		return u.Stats(), true
	}
	return upload.Stats{}, false
}
func (p recorderPipeline) AnalyticsCounts() (analytics.Counts, error) {
	if p.r.Analytics() == nil {
		return analytics.Counts{}, analytics.ErrOff
	}
	return p.r.Analytics().Counts()
}
