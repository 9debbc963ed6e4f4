package buffer

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/sim/labsim"
)

// BenchmarkWriter measures the group-commit writer on a real file: frames per
// second from 12 concurrent sources of the simulated lab's messages, and the
// latency of each commit (one fsync pair). Run on the target's SD card to see its real figures:
//
//	go test -run '^$' -bench Writer -benchtime 20000x ./internal/record/buffer
func BenchmarkWriter(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "buffer.db"), Options{SkipCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	var lat []time.Duration
	w := NewWriter(db, WriterOptions{Queue: 16384, OnCommit: func(_ int, took time.Duration) { mu.Lock(); lat = append(lat, took); mu.Unlock() }})
	stopWriter := startWriter(b, w)
	const sources = 12
	msgs := realistic(b, sources, 2000)
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("spin%d", 30+s)
			pool := msgs[s]
			for i := s; i < b.N; i += sources {
				r := frame.Record{Stream: name, Received: time.Now(), Kind: frame.Text, Data: pool[i%len(pool)]}
				for !w.Enqueue(r) {
					time.Sleep(100 * time.Microsecond) // the benchmark wants every frame, unlike a source
				}
			}
		}()
	}
	wg.Wait()
	stopWriter()
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

// realistic makes n messages of each of streams simulated lab streams.
func realistic(b *testing.B, streams, n int) [][][]byte {
	c := &capture{}
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("spin%02d", i)
	}
	if err := labsim.NewLabOn(c, labsim.LabOptions{Streams: names, Seed: 5}).RunN(context.Background(), n); err != nil {
		b.Fatal(err)
	}
	out := make([][][]byte, streams)
	for i, name := range names {
		out[i] = c.by[name]
	}
	return out
}

type capture struct {
	mu sync.Mutex
	by map[string][][]byte
}

func (c *capture) Publish(stream string, data []byte, binary bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string][][]byte{}
	}
	c.by[stream] = append(c.by[stream], append([]byte(nil), data...))
}

// collector turns the simulated lab's frames into commits of a fixed size.
type collector struct {
	db     *DB
	commit int
	at     time.Time
	batch  []frame.Record
	n, raw int
	err    error
}

func (c *collector) Publish(stream string, data []byte, binary bool) {
	c.at = c.at.Add(5 * time.Millisecond)
	c.batch = append(c.batch, frame.Record{Stream: stream, Received: c.at, ClockSynced: true, Kind: frame.Text, Data: append([]byte(nil), data...)})
	c.n++
	c.raw += len(data)
	if len(c.batch) >= c.commit {
		c.flush()
	}
}

func (c *collector) flush() {
	if len(c.batch) > 0 && c.err == nil {
		c.err = c.db.Append(c.batch)
	}
	c.batch = c.batch[:0]
}

// BenchmarkBytesPerMessage is what the buffer costs per realistic message
// (the simulated lab's mix: UI logs with random numbers, analytics,
// responses with NaN, some 2 KB achievement logs) from 80 streams, 2,500
// messages each, for commits of 2 frames (80 x 20 msg/s on a fast disk), 32
// (the same on an SD card, ~20 ms per commit) and 2000 (flat out). The
// format alone is measured: fsync is off, which changes no byte.
// stored-B/msg is the blocks' bytes, file-B/msg the file's size (bbolt
// grows it in steps of up to 16 MiB and keeps freed pages for reuse):
//
//	go test -run '^$' -bench BytesPerMessage -benchtime 1x ./internal/record/buffer
func BenchmarkBytesPerMessage(b *testing.B) {
	for _, commit := range []int{2, 32, 2000} {
		b.Run(fmt.Sprintf("commit%d", commit), func(b *testing.B) {
			for b.Loop() {
				db, err := Open(filepath.Join(b.TempDir(), "buffer.db"), Options{SkipCheck: true, noSync: true})
				if err != nil {
					b.Fatal(err)
				}
				c := &collector{db: db, commit: commit, at: time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)}
				names := make([]string, 80)
				for i := range names {
					names[i] = fmt.Sprintf("spin%02d", i)
				}
				lab := labsim.NewLabOn(c, labsim.LabOptions{Streams: names, Seed: 3})
				if err := lab.RunN(context.Background(), 2500); err != nil {
					b.Fatal(err)
				}
				c.flush()
				if c.err != nil {
					b.Fatal(c.err)
				}
				used, size := db.Used(), db.Size()
				_ = db.Close()
				b.ReportMetric(float64(used)/float64(c.n), "stored-B/msg")
				b.ReportMetric(float64(size)/float64(c.n), "file-B/msg")
				b.ReportMetric(float64(c.raw)/float64(c.n), "raw-B/msg")
			}
		})
	}
}

// BenchmarkOpen opens a buffer of 200,000 records (about 40 MB): the
// checks at start (meta, freelist, the tree walk, bbolt's own check) and
// the counts. go test -bench Open -run '^$' ./internal/record/buffer
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "buffer.db")
	db, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, db, 200_000)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		db, err := Open(path, Options{})
		if err != nil || db.Quarantined() != "" {
			b.Fatalf("open: %v (quarantined %q)", err, db.Quarantined())
		}
		_ = db.Close()
	}
	size, _ := InUse(path)
	b.ReportMetric(float64(size)/1e6, "MB")
}
