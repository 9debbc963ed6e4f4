package status

import (
	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/compactor"
	"github.com/practable/lablog/internal/recorder"
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
}

// ForRecorder adapts a recorder to Pipeline.
func ForRecorder(r *recorder.Recorder) Pipeline { return recorderPipeline{r} }

type recorderPipeline struct{ r *recorder.Recorder }

func (p recorderPipeline) Sources() []source.Stats            { return p.r.Sources() }
func (p recorderPipeline) WriterStats() buffer.WriterStats    { return p.r.Writer().Stats() }
func (p recorderPipeline) BufferSize() int64                  { return p.r.Buffer().Size() }
func (p recorderPipeline) Pending() ([]buffer.Pending, error) { return p.r.Buffer().Pending() }
func (p recorderPipeline) LastCompaction() compactor.Result   { return p.r.Compactor().Last() }
