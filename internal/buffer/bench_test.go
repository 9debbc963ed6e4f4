package buffer

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/frame"
)

// BenchmarkWriter measures the group-commit writer on a real file: frames per
// second from 12 concurrent sources, and the latency of each commit (one
// fsync pair). Run on the target's SD card to see its real figures:
//
//	go test -run '^$' -bench Writer -benchtime 20000x ./internal/buffer
func BenchmarkWriter(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "buffer.db"), Options{SkipCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	w := NewWriter(db, 16384, nil)
	var mu sync.Mutex
	var lat []time.Duration
	w.OnCommit = func(_ int, took time.Duration) { mu.Lock(); lat = append(lat, took); mu.Unlock() }
	go w.Run()
	payload := []byte(`{"user":"53a6788c-e689-48d4-9231-c2fbd23df009","t":1673351988406,"exp":"spinner","hardware":"spin30","course":"engdes1","type":"analytics","payload":{"log":"voltage","data":{"set":0}}}`)
	const sources = 12
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("spin%d", 30+s)
			for i := s; i < b.N; i += sources {
				r := frame.Record{Stream: name, Received: time.Now(), Kind: frame.Text, Data: payload}
				for !w.Enqueue(r) {
					time.Sleep(100 * time.Microsecond) // the benchmark wants every frame, unlike a source
				}
			}
		}()
	}
	wg.Wait()
	w.Stop()
	b.StopTimer()
	st := w.Stats()
	if st.Committed != int64(b.N) {
		b.Fatalf("committed %d of %d", st.Committed, b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(b.N)/float64(len(lat)), "frames/commit")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-commit-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-commit-ms")
}

// BenchmarkCommitOne is the cost of a commit holding a single frame: the
// floor of the loss window at low traffic (one fsync pair on this disk).
func BenchmarkCommitOne(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "buffer.db"), Options{SkipCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := []frame.Record{{Stream: "spin30", Received: time.Now(), Kind: frame.Text, Data: make([]byte, 220)}}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		if err := db.Append(r); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-commit-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-commit-ms")
}
