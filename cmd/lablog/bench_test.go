package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/sim/bench"
)

// quickBench runs the bench with o (3 minutes at most), logs its table and
// returns the report, the table and a reader of a row's median.
func quickBench(t *testing.T, o bench.Options) (*bench.Report, string, func(scenario, figure string) float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, o)
	var out bytes.Buffer
	if rep != nil {
		_ = rep.Write(&out)
	}
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())

	return rep, out.String(), func(scenario, figure string) float64 {
		t.Helper()
		row := rep.Find(scenario, figure)
		if row == nil {
			t.Fatalf("no row %q / %q", scenario, figure)
		}
		return row.Summary().Median
	}
}

// The harness end to end in quick mode, against the real binary: every row
// of the table is there, and at a low paced load everything sent was
// committed, nothing dropped, with fsyncs counted.
func TestBenchQuickEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for half a minute; not in -short")
	}
	// http has its own test below.
	only := slices.DeleteFunc(slices.Clone(bench.Scenarios), func(s string) bool { return s == "http" })
	rep, table, val := quickBench(t, bench.Options{Binary: lablogBinary(t), Quick: true, Duration: 1500 * time.Millisecond, Only: only})
	ingestFigs := []string{"sent", "committed", "dropped", "commit p50", "commit p99", "commit max", "commits", "fsyncs per message", "queue depth peak"}
	resources := []string{"peak RSS anon", "peak RSS file", "peak RSS (VmHWM)", "CPU per 100k messages"}
	compactionFigs := []string{"rows", "rows per CPU second", "peak RSS (VmHWM)", "peak RSS (rusage)", "peak RSS anon", "peak RSS file",
		"Parquet bytes per message", "Parquet / raw JSON", "raw JSON bytes per message", "buffer bytes per message"}
	want := map[string][]string{
		"ingest 12 x 2 msg/s":                              append(ingestFigs, resources...),
		"ingest 80 x 20 msg/s":                             append(ingestFigs, resources...),
		"ingest flat out, 12 streams":                      append(ingestFigs, resources...),
		"slow disk 10ms, 80 x 20 msg/s":                    ingestFigs,
		"slow disk 10ms+70ms@2, 80 x 20 msg/s":             ingestFigs,
		"baseline 80 x 20 msg/s":                           {"committed", "fsyncs per message"},
		"baseline flat out, 12 streams":                    {"committed", "fsyncs per message"},
		"lablog vs baseline":                               {"fewer fsyncs per message at 80 x 20 msg/s", "more msg/s committed flat out"},
		"idle, 80 silent streams":                          {"CPU", "RSS", "RSS anon", "RSS file", "peak RSS (VmHWM)"},
		"compaction, 20000 rows":                           compactionFigs,
		"compaction, 20000 rows, store caught up (daemon)": compactionFigs,
		"scaling 1 streams":                                {"idle RSS", "idle CPU", "1 msg/s peak RSS", "1 msg/s CPU", "1 msg/s dropped"},
		"scaling 10 streams":                               {"idle RSS", "1 msg/s peak RSS"},
		"scaling 1 to 10 streams":                          {"anon RSS per added stream", "CPU per added stream"},
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
	// The delay reached the child's fsyncs (a failpoint build): two
	// delayed fsyncs per commit.
	if p50 := val("slow disk 10ms, 80 x 20 msg/s", "commit p50"); p50 < 20 {
		t.Errorf("slow disk 10ms: commit p50 %v ms, want at least 20 (two 10 ms fsyncs)", p50)
	}
	for _, sc := range []string{"compaction, 20000 rows", "compaction, 20000 rows, store caught up (daemon)"} {
		if c := val(sc, "rows"); !(c > 0) {
			t.Errorf("%s: %v rows/s", sc, c)
		}
	}
	for _, line := range []string{"| scenario | figure | median | min | max | target |", "correctness and relative cost only"} {
		if !strings.Contains(table, line) {
			t.Errorf("table lacks %q", line)
		}
	}
}

// The HTTP ingest rows in quick mode, against the real binary: every row
// is there, each drive had statements acknowledged and none refused, the
// baseline fsyncs once a statement and lablog less (its group commit).
func TestBenchHTTPQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for half a minute; not in -short")
	}
	rep, _, val := quickBench(t, bench.Options{Binary: lablogBinary(t), Quick: true, Duration: time.Second, Only: []string{"http"}})
	loads := []string{"flat out, 16 clients", "1000 statements/s, 128 clients"}
	var drives []string
	for _, l := range loads {
		drives = append(drives, "http ingest "+l, "http baseline "+l, "http ingest "+l+", commit_interval 0s")
	}
	for _, sc := range drives {
		if a := val(sc, "acknowledged"); !(a > 0) {
			t.Errorf("%s: %v statements/s acknowledged", sc, a)
		}
		if r := val(sc, "refused"); r != 0 {
			t.Errorf("%s: %v statements/s refused", sc, r)
		}
		if p50, p99 := val(sc, "latency p50"), val(sc, "latency p99"); !(p50 > 0 && p99 >= p50) {
			t.Errorf("%s: latency p50 %v ms, p99 %v ms", sc, p50, p99)
		}
		for _, fig := range []string{"server CPU", "bench CPU"} {
			val(sc, fig)
		}
		f := val(sc, "fsyncs per statement")
		if strings.HasPrefix(sc, "http baseline") && f != 1 {
			t.Errorf("%s: %v fsyncs per statement, want 1", sc, f)
		}
		// At most one commit (two fsyncs) a statement; fewer under load.
		if strings.HasPrefix(sc, "http ingest") && !(f > 0 && f <= 2) {
			t.Errorf("%s: %v fsyncs per statement, want some, at most two", sc, f)
		}
	}
	for _, l := range loads {
		if x := val("lablog vs http baseline", "fewer fsyncs per statement, "+l); !(x > 1) {
			t.Errorf("%s: %vx fewer fsyncs than the baseline", l, x)
		}
		val("lablog vs http baseline", "more statements/s acknowledged, "+l)
	}
	if row := rep.Find("http ingest flat out, 16 clients", "acknowledged"); row == nil || row.Target != ">= 20000" {
		t.Errorf("flat-out row without its target: %+v", row)
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
