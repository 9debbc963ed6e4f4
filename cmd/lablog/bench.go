package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/practable/lablog/internal/sim/bench"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "[flags]",
		"Measure a lablog binary on loopback websockets and /addLog calls (ingest, baselines,\nmemory, compaction) and print one table (docs/performance.md).")
	var o bench.Options
	fs.StringVar(&o.Binary, "binary", "", "lablog `binary` to measure (default: this one)")
	fs.StringVar(&o.FailpointBinary, "failpoint-binary", "", "a lablog built with -tags failpoint, for the slow-disk rows (default: --binary, when it is one)")
	fs.StringVar(&o.Exec, "exec", "", "run the measured binary under this `command` (e.g. qemu-aarch64-static)")
	fs.IntVar(&o.Runs, "runs", 0, "runs per figure (default 3; 1 with --quick)")
	fs.DurationVar(&o.Duration, "duration", 0, "load per run (default 8s; 2s with --quick)")
	fs.BoolVar(&o.Quick, "quick", false, "small and fast: for tests and emulated arm64, not for figures")
	only := fs.String("only", "", "comma-separated `scenarios`: "+strings.Join(bench.Scenarios, ","))
	rows := fs.Int("compact-rows", 0, "rows in the compaction buffer (default 2000000)")
	sizes := fs.String("scale", "", "comma-separated stream counts for scaling (default 1,10,100,1000)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: finding this binary: %w", err)
		}
		o.Binary = exe
	}
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	for _, s := range strings.Split(*sizes, ",") {
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("bench: --scale %q: want stream counts like 1,10,100", *sizes)
		}
		o.ScaleSizes = append(o.ScaleSizes, n)
	}
	o.CompactRows = *rows
	o.Logger = newLogger(stderr, slog.LevelInfo)
	rep, err := bench.Run(ctx, o)
	if rep != nil {
		if werr := rep.Write(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
