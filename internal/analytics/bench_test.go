package analytics

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// benchArchive writes an archive of users x commands lab messages: each
// user's session takes under an hour (a command every 1-2 s), users start
// in hour user%24 on one of 20 streams, a tenth of them move to another
// hardware half-way, and 1 frame in 20 is a NaN analytics response. Files
// are written by the archive writer the compactor uses.
func benchArchive(tb testing.TB, root string, users, commands int) (messages int) {
	tb.Helper()
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	spin := []string{"voltage", "voltage_ramp", "position", "position_ramp", "speed", "speed_ramp"}
	pend := []string{"start", "brake", "load", "free", "sampling", "drive_perc", "brake_perc", "measuring_tools", "record"}
	seqs := map[string]uint64{}
	for h := range 24 {
		hour := day.Add(time.Duration(h) * time.Hour)
		byStream := map[string][]frame.Record{}
		for u := h; u < users; u += 24 {
			rng := rand.New(rand.NewPCG(uint64(u), 3))
			exp, cmds, prefix := "spinner", spin, "spin"
			if u%4 == 3 {
				exp, cmds, prefix = "pendulum", pend, "pend"
			}
			user := fmt.Sprintf("%08x-e689-48d4-9231-c2fbd23df009", u)
			at := hour.Add(time.Duration(rng.IntN(60)) * time.Second)
			for c := range commands {
				hw := fmt.Sprintf("%s%02d", prefix, 30+u%20)
				if u%10 == 0 && c > commands/2 {
					hw = fmt.Sprintf("%s%02d", prefix, 30+(u+1)%20)
				}
				at = at.Add(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
				data := fmt.Appendf(nil, `{"user":%q,"t":%d,"exp":%q,"hardware":%q,"course":"engdes1","type":"log","payload":{"log":%q,"data":{"set":%.2f}}}`,
					user, at.UnixMilli()-int64(rng.IntN(300)), exp, hw, cmds[rng.IntN(len(cmds))], rng.Float64()*10)
				if rng.IntN(20) == 0 {
					data = fmt.Appendf(data, `{"user":%q,"t":%d,"exp":%q,"course":"engdes1","type":"response","payload":{"exploration":NaN}}`, user, at.UnixMilli(), exp)
					messages++
				}
				byStream[hw] = append(byStream[hw], frame.Record{Stream: hw, Received: at, ClockSynced: true, Kind: frame.Text, Data: data})
				messages++
			}
		}
		for stream, recs := range byStream {
			slices.SortStableFunc(recs, func(a, b frame.Record) int { return a.Received.Compare(b.Received) })
			w, err := archive.Create(root, stream, hour, archive.Options{BufferID: "00112233445566aa"})
			if err != nil {
				tb.Fatal(err)
			}
			for _, r := range recs {
				seqs[stream]++
				if err := w.Add(archive.Entry{Seq: seqs[stream], Rec: r}); err != nil {
					tb.Fatal(err)
				}
			}
			if _, err := w.Publish(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return messages
}

var benchOnce struct {
	sync.Once
	root     string
	temp     bool // made here: removed by TestMain
	messages int
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchOnce.temp {
		os.RemoveAll(benchOnce.root)
	}
	os.Exit(code)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkArchiveMatrices reads an archive of users x commands into
// matrices. LABLOG_BENCH_USERS (default 100) and LABLOG_BENCH_COMMANDS
// (default 2000) size it: `make bench-analytics` runs 1000 x 2000, and
// keeps the archive in LABLOG_BENCH_ARCHIVE when set (for timing the
// binary). peak-heap-MiB is the highest live heap seen while reading.
func BenchmarkArchiveMatrices(b *testing.B) {
	users, commands := benchRoot(b)
	var st Stats
	var graphs int
	peak := &heapPeak{}
	runtime.GC()
	b.ResetTimer()
	stop := peak.watch()
	for b.Loop() {
		bld := NewBuilder()
		if _, err := bld.ReadArchive(benchOnce.root, Window{}, nil); err != nil {
			b.Fatal(err)
		}
		graphs = len(bld.Matrices())
		st = bld.Stats
	}
	stop()
	b.StopTimer()
	if st.Commands != int64(users*commands) || graphs != users {
		b.Fatalf("%d commands in %d graphs, want %d in %d", st.Commands, graphs, users*commands, users)
	}
	b.ReportMetric(float64(st.Messages)*float64(b.N)/b.Elapsed().Seconds(), "messages/s")
	b.ReportMetric(float64(peak.max())/(1<<20), "peak-heap-MiB")
}

// benchRoot writes the benchmarks' archive once (see
// BenchmarkArchiveMatrices) and returns its size.
func benchRoot(b *testing.B) (users, commands int) {
	users, commands = envInt("LABLOG_BENCH_USERS", 100), envInt("LABLOG_BENCH_COMMANDS", 2000)
	benchOnce.Do(func() {
		benchOnce.root = os.Getenv("LABLOG_BENCH_ARCHIVE")
		if benchOnce.root == "" {
			dir, err := os.MkdirTemp("", "lablog-analytics-bench-")
			if err != nil {
				b.Fatal(err)
			}
			benchOnce.root, benchOnce.temp = dir, true
		}
		if files, _ := ArchiveFiles(benchOnce.root); len(files) > 0 {
			b.Logf("reading the archive already in %s", benchOnce.root)
			return
		}
		start := time.Now()
		benchOnce.messages = benchArchive(b, benchOnce.root, users, commands)
		b.Logf("archive of %d users x %d commands (%d messages) written to %s in %s",
			users, commands, benchOnce.messages, benchOnce.root, time.Since(start).Round(time.Millisecond))
	})
	return users, commands
}

// BenchmarkSeed reads the same archive into a new live store, as lablog
// run does once after a power cut or an upgrade.
func BenchmarkSeed(b *testing.B) {
	users, commands := benchRoot(b)
	quiet := slog.New(slog.DiscardHandler)
	var st Stats
	for b.Loop() {
		b.StopTimer()
		db, err := buffer.Open(filepath.Join(b.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		store, err := OpenStore(db, Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := store.Seed(benchOnce.root); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, st, err = store.Graphs(nil); err != nil {
			b.Fatal(err)
		}
		_ = db.Close()
		b.StartTimer()
	}
	if st.Commands != int64(users*commands) {
		b.Fatalf("%d commands, want %d", st.Commands, users*commands)
	}
	b.ReportMetric(float64(st.Messages)*float64(b.N)/b.Elapsed().Seconds(), "messages/s")
}

// heapPeak samples the live heap every 10 ms.
type heapPeak struct {
	mu   sync.Mutex
	peak uint64
}

func (h *heapPeak) watch() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			h.mu.Lock()
			h.peak = max(h.peak, sample[0].Value.Uint64())
			h.mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (h *heapPeak) max() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}
