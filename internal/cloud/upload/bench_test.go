package upload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
)

// benchArchive makes files copies of one real archive file of rows frames,
// each under its own valid name (a stream per copy, one hour), and returns
// the bytes of one.
func benchArchive(b *testing.B, root string, files, rows int) int64 {
	b.Helper()
	src := filepath.Join(root, filepath.FromSlash(publish(b, root, "bench", day.Add(14*time.Hour), 1, rows)))
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Remove(src); err != nil {
		b.Fatal(err)
	}
	for i := range files {
		stream := fmt.Sprintf("s%04d", i)
		n := archive.Name{Stream: stream, Hour: day.Add(14 * time.Hour), BufferID: "0123456789abcdef", First: 1, Last: uint64(rows)}
		dir := archive.PartitionDir(root, stream, n.Hour)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, archive.FileName(n)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return int64(len(data))
}

// rssKiB reads VmRSS of this process.
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUpload uploads a set of files to versitygw on loopback, each
// iteration under a new site (so every file is really sent), and reports
// files/s, MB/s, the uploader's CPU (this process; versitygw excluded) and
// this process's peak RSS while uploading.
func BenchmarkUpload(b *testing.B) {
	for _, tc := range []struct {
		name        string
		files, rows int
	}{
		{"small-files", 200, 200},   // quiet streams: ~10 KiB an hour
		{"hourly-files", 20, 72000}, // a busy stream's hour (20 msg/s): ~1.5 MB
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := &env{}
			e.srv = startServer(b)
			e.bucket = "bench"
			e.srv.Bucket(b, e.bucket)
			e.root = newArchive(b)
			size := benchArchive(b, e.root, tc.files, tc.rows)
			o := Options{Root: e.root, Endpoint: e.srv.URL, Region: e.srv.Region, Bucket: e.bucket, Site: "x", PathStyle: true,
				Concurrency: 2, Logger: discardLogger()}
			creds := Credentials{AccessKeyID: e.srv.AccessKey, SecretAccessKey: e.srv.SecretKey}
			var files, bytes int64
			var wall, cpu time.Duration
			var peak atomic.Int64
			base := rssKiB()
			b.ResetTimer()
			for i := range b.N {
				o.Site = fmt.Sprintf("run%d", i)
				u := New(o, creds)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					t := time.NewTicker(20 * time.Millisecond)
					defer t.Stop()
					for {
						if r := rssKiB(); r > peak.Load() {
							peak.Store(r)
						}
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				}()
				c0, t0 := cpuTime(), time.Now()
				for range 10 {
					u.cycle(context.Background())
					if u.Stats().State == StateIdle {
						break
					}
				}
				wall += time.Since(t0)
				cpu += cpuTime() - c0
				close(stop)
				wg.Wait()
				st := u.Stats()
				if st.FilesUploaded != int64(tc.files) {
					b.Fatalf("uploaded %d of %d: %+v", st.FilesUploaded, tc.files, st)
				}
				files += st.FilesUploaded
				bytes += st.BytesUploaded
			}
			b.StopTimer()
			b.ReportMetric(float64(files)/wall.Seconds(), "files/s")
			b.ReportMetric(float64(bytes)/wall.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(size)/1024, "KiB/file")
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "CPU%core")
			b.ReportMetric(cpu.Seconds()/(float64(bytes)/1e9), "CPUs/GB")
			b.ReportMetric(float64(peak.Load())/1024, "peakRSS_MiB")
			b.ReportMetric(float64(peak.Load()-base)/1024, "RSSgrowth_MiB")
		})
	}
}

func discardLogger() *slogLogger { return slogNew(io.Discard) }
