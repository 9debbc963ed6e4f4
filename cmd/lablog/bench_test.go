package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/bench"
)

// The harness end to end in quick mode, against the real binary: every row
// of the table is there, and at a low paced load everything sent was
// committed, nothing dropped, with fsyncs counted.
func TestBenchQuickEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for half a minute; not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Options{Binary: lablogBinary(t), Quick: true, Duration: 1500 * time.Millisecond})
	var out bytes.Buffer
	if rep != nil {
		_ = rep.Write(&out)
	}
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())

	val := func(scenario, figure string) float64 {
		t.Helper()
		row := rep.Find(scenario, figure)
		if row == nil {
			t.Fatalf("no row %q / %q", scenario, figure)
		}
		return row.Summary().Median
	}
	ingestFigs := []string{"sent", "committed", "dropped", "commit p50", "commit p99", "commit max", "commits", "fsyncs per message", "queue depth peak"}
	resources := []string{"peak RSS anon", "peak RSS file", "peak RSS (VmHWM)", "CPU per 100k messages"}
	want := map[string][]string{
		"ingest 12 x 2 msg/s":                  append(ingestFigs, resources...),
		"ingest 80 x 20 msg/s":                 append(ingestFigs, resources...),
		"ingest flat out, 12 streams":          append(ingestFigs, resources...),
		"slow disk 10ms, 80 x 20 msg/s":        ingestFigs,
		"slow disk 10ms+70ms@2, 80 x 20 msg/s": ingestFigs,
		"baseline 80 x 20 msg/s":               {"committed", "fsyncs per message"},
		"baseline flat out, 12 streams":        {"committed", "fsyncs per message"},
		"lablog vs baseline":                   {"fewer fsyncs per message at 80 x 20 msg/s", "more msg/s committed flat out"},
		"idle, 80 silent streams":              {"CPU", "RSS"},
		"compaction, 20000 rows":               {"rows", "peak RSS (rusage)", "peak RSS anon", "peak RSS file", "Parquet bytes per message", "Parquet / raw JSON", "raw JSON bytes per message", "buffer bytes per message"},
		"scaling 1 streams":                    {"idle RSS", "idle CPU", "1 msg/s peak RSS", "1 msg/s CPU", "1 msg/s dropped"},
		"scaling 10 streams":                   {"idle RSS", "1 msg/s peak RSS"},
		"scaling 1 to 10 streams":              {"anon RSS per added stream", "CPU per added stream"},
	}
	for sc, figs := range want {
		for _, f := range figs {
			if rep.Find(sc, f) == nil {
				t.Errorf("table has no row %q / %q", sc, f)
			}
		}
	}

	// A paced low load is recorded completely.
	low := "ingest 12 x 2 msg/s"
	sent, committed := val(low, "sent"), val(low, "committed")
	if sent <= 0 || committed != sent {
		t.Errorf("%s: committed %v msg/s of %v sent, want all", low, committed, sent)
	}
	if d := val(low, "dropped"); d != 0 {
		t.Errorf("%s: dropped %v msg/s, want 0", low, d)
	}
	for _, sc := range []string{low, "ingest 80 x 20 msg/s"} {
		if f := val(sc, "fsyncs per message"); !(f > 0) {
			t.Errorf("%s: fsyncs per message %v, want > 0", sc, f)
		}
	}
	if f := val("baseline 80 x 20 msg/s", "fsyncs per message"); f != 1 {
		t.Errorf("baseline: fsyncs per message %v, want 1", f)
	}
	if c := val("compaction, 20000 rows", "rows"); !(c > 0) {
		t.Errorf("compaction: %v rows/s", c)
	}
	for _, line := range []string{"| scenario | figure | median | min | max | target |", "correctness and relative cost only"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("table lacks %q", line)
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{{"--only", "nonsense"}, {"--scale", "1,x"}} {
		var out, errw bytes.Buffer
		err := run(context.Background(), append([]string{"bench", "--binary", "/nonexistent"}, args...), &out, &errw)
		if err == nil {
			t.Errorf("bench %v: no error", args)
		}
	}
}
