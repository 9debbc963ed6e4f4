package source

import (
	"strconv"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// Sink takes records; false means its queue is full and the record was not
// taken. It may wait a bounded time for room (the buffer's writer does while
// it commits), which holds back this stream's handling of frames, not the
// reading of its socket: read hands frames over through a queue of its own.
type Sink interface {
	Enqueue(frame.Record) bool
}

// warnEvery limits the queue-full warning, which would otherwise be logged
// once per frame exactly when the system is struggling.
const warnEvery = 10 * time.Second

// emit hands one record to the sink. After drops, an Overflow record holding
// their count goes first, so every gap is visible in the data at the place it
// happened. Only the Run goroutine calls emit.
func (s *Source) emit(kind frame.Kind, data []byte) {
	now, synced := s.cfg.Now()
	s.emitAt(now, synced, kind, data)
}

// emitAt is emit for a record received at now.
func (s *Source) emitAt(now time.Time, synced bool, kind frame.Kind, data []byte) {
	rec := func(k frame.Kind, d []byte) frame.Record {
		return frame.Record{Stream: s.cfg.Stream, Received: now, ClockSynced: synced, Kind: k, Data: d}
	}
	if s.pending > 0 {
		if !s.sink.Enqueue(rec(frame.Overflow, strconv.AppendInt(nil, s.pending, 10))) {
			s.drop()
			return
		}
		s.log.Info("writer queue accepts again", "dropped", s.pending)
		s.pending = 0
	}
	if !s.sink.Enqueue(rec(kind, data)) {
		s.drop()
	}
}

func (s *Source) drop() {
	s.pending++
	total := s.stats.dropped()
	if t := time.Now(); s.lastWarn.IsZero() || t.Sub(s.lastWarn) >= warnEvery {
		s.lastWarn = t
		s.log.Warn("writer queue full: dropping frames", "dropped", total)
	}
}
