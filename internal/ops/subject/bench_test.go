package subject_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/testing/testkit"
)

// benchArchive writes about mb megabytes of archive files (hours of 20k
// records of 50 users, every shape) under root; it returns the rows.
func benchArchive(b *testing.B, root string, mb int64) (rows int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	hour := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var size int64
	for h := 0; size < mb<<20; h++ {
		at := hour.Add(time.Duration(h) * time.Hour)
		counts := map[string]int{}
		recs := testkit.SubjectRecords(rng, "spin30", at, 20_000, 50, counts)
		w, err := archive.Create(root, "spin30", at, archive.Options{BufferID: "0123456789abcdef"})
		if err != nil {
			b.Fatal(err)
		}
		for i, r := range recs {
			if err := w.Add(archive.Entry{Seq: uint64(h*20_000 + i + 1), Rec: r}); err != nil {
				b.Fatal(err)
			}
		}
		rows += w.Rows()
		path, err := w.Publish()
		if err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(path)
		size += st.Size()
	}
	return rows
}

// BenchmarkEraseOneUser erases one of 50 users from an archive of
// LABLOG_BENCH_ERASE_MB megabytes (64 by default): every file holds the
// user, so every file is read twice (plan, rewrite) and written once.
// Reports rows/s over all the archive's rows, and MB/s of archive.
func BenchmarkEraseOneUser(b *testing.B) {
	mb := int64(64)
	if v := os.Getenv("LABLOG_BENCH_ERASE_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		mb = n
	}
	src := filepath.Join(b.TempDir(), "archive")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	rows := benchArchive(b, src, mb)
	var bytes int64
	files, _ := archive.Files(src)
	for _, f := range files {
		bytes += f.Size
	}
	if keep := os.Getenv("LABLOG_BENCH_ERASE_KEEP"); keep != "" {
		// For measuring the real binary (peak RSS) on the same archive.
		if out, err := exec.Command("cp", "-a", src, keep).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
	}
	b.ResetTimer()
	var took, cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
		// Hard links: the erasure replaces files, never writes into one.
		if out, err := exec.Command("cp", "-al", src, dir).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		b.StartTimer()
		start, startCPU := time.Now(), cpuTime()
		_, rep, err := subject.Erase(context.Background(), testkit.SubjectUser(17), subject.Options{DataDir: b.TempDir(), Archive: dir, Require: archive.RequireNone})
		took += time.Since(start)
		cpu += cpuTime() - startCPU
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Files) != len(files) {
			b.Fatalf("%d files rewritten of %d", len(rep.Files), len(files))
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/took.Seconds(), "rows/s")
	b.ReportMetric(float64(bytes>>20)*float64(b.N)/took.Seconds(), "MB/s")
	b.ReportMetric(float64(bytes>>20), "archive_MB")
	// On a shared machine the wall clock waits for other processes: the
	// rate per CPU second is what a dedicated core would do.
	b.ReportMetric(float64(rows)*float64(b.N)/cpu.Seconds(), "rows/cpu-s")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
