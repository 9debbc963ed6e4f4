package status

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/source"
)

// fakePipeline is a Pipeline whose every value the test sets.
type fakePipeline struct {
	mu      sync.Mutex
	sources []source.Stats
	writer  buffer.WriterStats
	size    int64
	pending []buffer.Pending
	last    compactor.Result
	// faults is a real store, in memory unless the test opens one on a
	// file; nil (no faults) is valid.
	faults *fault.Store
	// provision is what Provisioning answers.
	provision []relay.ProvisionStats
	// upload is what Upload answers; nil: upload off.
	upload *upload.Stats
}

func (f *fakePipeline) set(fn func(f *fakePipeline)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakePipeline) Sources() []source.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]source.Stats(nil), f.sources...)
}

func (f *fakePipeline) WriterStats() buffer.WriterStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writer
}

func (f *fakePipeline) BufferSize() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

func (f *fakePipeline) Pending() ([]buffer.Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]buffer.Pending(nil), f.pending...), nil
}

func (f *fakePipeline) LastCompaction() compactor.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakePipeline) store() *fault.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.faults
}

func (f *fakePipeline) ActiveFaults(now time.Time) []fault.Fault { return f.store().Active(now) }
func (f *fakePipeline) FaultCounts() map[fault.Kind]int64        { return f.store().Counts() }
func (f *fakePipeline) AckFaults(now time.Time) error            { return f.store().Ack(now) }
func (f *fakePipeline) Upload() (upload.Stats, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.upload == nil {
		return upload.Stats{}, false
	}
	return *f.upload, true
}

func (f *fakePipeline) Provisioning() []relay.ProvisionStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.provision
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
