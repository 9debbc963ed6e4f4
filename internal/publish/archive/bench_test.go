package archive_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// benchEntries makes n messages shaped like a spinner lab's logging topic:
// ~200-byte log events from 40 users, a few glued pairs, an occasional
// Python-style analytics response with NaN.
func benchEntries(n int) ([]archive.Entry, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	var entries []archive.Entry
	raw := 0
	t0 := int64(1795000000000)
	for seq, msgs := uint64(1), 0; msgs < n; seq++ {
		var data []byte
		for k := 0; k < 1+rng.IntN(8)/7 && msgs < n; k++ { // 1 in 8 frames holds two messages
			t0 += int64(rng.IntN(400))
			if rng.IntN(50) == 0 {
				data = fmt.Appendf(data, `{"user": "u%03d", "t": %d, "exp": "spinner", "hardware": "spin30", "course": "engdes1", "type": "response", "payload": {"score": NaN, "next": "ramp"}}`, rng.IntN(40), t0)
			} else {
				data = fmt.Appendf(data, `{"user":"u%03d","t":%d,"exp":"spinner","hardware":"spin30","course":"engdes1","type":"log","payload":{"log":"voltage","data":{"set":%d,"drive":%.3f}}}`, rng.IntN(40), t0, rng.IntN(10), rng.Float64()*5)
			}
			msgs++
		}
		raw += len(data)
		entries = append(entries, archive.Entry{Seq: seq, Rec: frame.Record{
			Stream: "spin30", Received: hour14.Add(time.Duration(t0%3600000) * time.Millisecond), ClockSynced: true, Kind: frame.Text, Data: data,
		}})
	}
	return entries, raw
}

// BenchmarkWrite writes one file of 100k messages per op and reports the
// throughput and the size of a message in Parquet against its raw JSON.
func BenchmarkWrite(b *testing.B) {
	const msgs = 100_000
	entries, raw := benchEntries(msgs)
	root := b.TempDir()
	var size int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		hour := hour14.Add(time.Duration(i) * time.Hour)
		w, err := archive.Create(root, "spin30", hour, archive.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if err := w.Add(e); err != nil {
				b.Fatal(err)
			}
		}
		path, err := w.Publish()
		if err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(path)
		size = fi.Size()
		os.Remove(path)
	}
	b.ReportMetric(float64(msgs*b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(size)/msgs, "parquet-bytes/msg")
	b.ReportMetric(float64(raw)/msgs, "raw-bytes/msg")
}

// BenchmarkVerify verifies one file of 100k messages per op, as the
// compactor does after each publish.
func BenchmarkVerify(b *testing.B) {
	const msgs = 100_000
	entries, _ := benchEntries(msgs)
	w, err := archive.Create(b.TempDir(), "spin30", hour14, archive.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if err := w.Add(e); err != nil {
			b.Fatal(err)
		}
	}
	path, err := w.Publish()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := archive.Verify(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(msgs*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
