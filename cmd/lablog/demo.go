package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/sim/labsim"
)

// cmdDemo records a simulated lab with the real pipeline: a fake relay host
// on loopback, simulated UIs, and lablog compacting every few seconds.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "[--dir D] [--duration 30s] [--streams N] [--rate 5] [--listen ADDR]",
		"Record a simulated lab (fake relay host, students, dashboards, bad frames) with the real\npipeline for a while, then list, verify and show the Parquet files. Needs no network.")
	dir := fs.String("dir", "lablog-demo", "`folder` for the buffer, the archive and the log")
	duration := fs.Duration("duration", 30*time.Second, "how long the lab runs (0: until Ctrl-C)")
	streams := fs.Int("streams", 12, "number of simulated lab devices")
	rate := fs.Float64("rate", 5, "average messages per second per device")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` of the status page, JSON and metrics (\"\" for none)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *streams < 1 || *streams > 500 {
		return fmt.Errorf("demo: --streams must be between 1 and 500, got %d", *streams)
	}

	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer host.Close()
	host.CountOnly = true

	names := demoStreams(*streams)
	cfg := demoConfig(*dir, host.URL(), names)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	if err := os.MkdirAll(cfg.Archive.Path, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// The simulated UIs' credential for /addLog, made for this run.
	uiPass := rand.Text()
	if err := os.WriteFile(cfg.AddLog.CredentialsFile, []byte(demoUIUser+":"+uiPass+"\n"), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	logPath := filepath.Join(*dir, "lablog.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()
	log := newLogger(logFile, slog.LevelInfo)

	// A demo's timestamps matter to no one: an unsynced clock (any container
	// or VM) must not turn its page to WARNING.
	a, err := assemble(cfg, log, opsOptions{Listen: *listen, Monitor: status.Options{ClockOptional: true}})
	if err != nil {
		return err
	}
	rec, ops := a.rec, a.ops
	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(runCtx) }()
	stop := sync.OnceValue(func() error { stopRun(); return <-runDone })
	defer stop()

	fmt.Fprintf(stdout, "lablog demo: recording %d simulated devices (%s) from %s\n",
		len(names), config.JoinList(names), host.URL())
	fmt.Fprintf(stdout, "buffer %s, archive %s, log %s; Ctrl-C stops\n", cfg.Buffer.Path, cfg.Archive.Path, logPath)
	fmt.Fprintf(stdout, "the demo archives the open hour every %v so files appear at once (the daemon archives each hour\nafter it closes): expect one file per device per %v\n", cfg.Compaction.Interval, cfg.Compaction.Interval)
	switch {
	case ops.URL != "":
		fmt.Fprintf(stdout, "status page: %s/ (JSON: %s/api/status, metrics: %s/metrics)\n", ops.URL, ops.URL, ops.URL)
	case *listen != "":
		fmt.Fprintf(stdout, "status page unavailable: cannot listen on %s (see the log)\n", *listen)
	}

	labCtx, stopLab := context.WithCancel(ctx)
	if *duration > 0 {
		labCtx, stopLab = context.WithTimeout(ctx, *duration)
	}
	defer stopLab()
	lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, Rate: *rate, JoinProb: 0.15,
		BadFrames: true, Seed: uint64(time.Now().UnixNano())})
	labDone := make(chan struct{})
	go func() { defer close(labDone); _ = lab.Run(labCtx) }()
	// Today's UIs beside the legacy streams: statements over HTTP.
	uis := &labsim.StatementUIs{LH: a.addLogURL, User: demoUIUser, Password: uiPass, Devices: names,
		Rate: *rate * float64(len(names)) / 4, Seed: uint64(time.Now().UnixNano())}
	uisDone := make(chan struct{})
	go func() { defer close(uisDone); _ = uis.Run(labCtx) }()
	fmt.Fprintf(stdout, "and today's UIs posting statements to %s/addLog (stream addlog-spinner, addlog-pendulum)\n", a.addLogURL)

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	live := isTerminal(stdout)
	for running := true; running; {
		select {
		case <-labDone:
			running = false
		case <-tick.C:
			line := demoSummary(time.Since(start), rec, cfg.Archive.Path)
			if live {
				fmt.Fprintf(stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(stdout, line)
			}
		}
	}
	if live {
		fmt.Fprintln(stdout)
	}
	<-uisDone
	fmt.Fprintf(stdout, "statements: %d posted, %d acknowledged (each committed before its answer)\n", uis.Sent(), uis.Acked())
	awaitReceived(host, rec, names, 3*time.Second)
	// The recorder and the status page stop before the buffer is reopened
	// to flush it.
	if err := stop(); err != nil {
		return err
	}
	if err := flushArchive(cfg, log); err != nil {
		return err
	}
	return demoReport(stdout, cfg.Archive.Path)
}

// demoStreams names n devices: two spinners for each pendulum.
func demoStreams(n int) []string {
	var names []string
	for i := 0; len(names) < n; i++ {
		names = append(names, fmt.Sprintf("spin%02d", 30+i))
		if len(names) < n && i%2 == 1 {
			names = append(names, fmt.Sprintf("pend%02d", i/2))
		}
	}
	return names
}

func demoConfig(dir, hostURL string, names []string) config.Config {
	cfg := config.Default()
	cfg.Buffer.Path = filepath.Join(dir, "buffer.db")
	cfg.Archive.Path = filepath.Join(dir, "archive")
	cfg.Archive.Require = config.RequireNone
	cfg.Compaction.Interval = 10 * time.Second
	cfg.Compaction.Grace = 0
	cfg.Compaction.OpenHours = true
	for _, n := range names {
		cfg.StreamSpecs = append(cfg.StreamSpecs, config.StreamSpec{Name: n, RelayHost: hostURL})
	}
	cfg.AddLog.Listen = "127.0.0.1:0"
	cfg.AddLog.CredentialsFile = filepath.Join(dir, "addlog-credentials")
	cfg.AddLog.AllowedOrigins = []string{"*"}
	return cfg
}

// demoUIUser is the simulated UIs' user name for /addLog.
const demoUIUser = "demo-ui"

func demoSummary(elapsed time.Duration, rec *recorder.Recorder, archiveDir string) string {
	connected, frames := 0, int64(0)
	srcs := rec.Sources()
	for _, s := range srcs {
		if s.Connected {
			connected++
		}
		frames += s.Frames
	}
	w := rec.Writer().Stats()
	files, size := archiveSize(archiveDir)
	last := rec.Compactor().Last()
	compaction := "ok"
	if last.Err != nil {
		compaction = "error: " + last.Err.Error()
	}
	return fmt.Sprintf("[%3.0fs] %d/%d connected | %d frames | %d committed | queue %d | dropped %d | archive %d files %s | compaction %s",
		elapsed.Seconds(), connected, len(srcs), frames, w.Committed, w.Queued, w.Dropped, files, status.HumanBytes(size), compaction)
}

// awaitReceived waits, within limit, until the sources have read every frame
// the host delivered, so the demo's final numbers add up.
func awaitReceived(host *labsim.Host, rec *recorder.Recorder, names []string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var delivered, received int64
		for _, n := range names {
			delivered += host.DeliveredCount(n)
		}
		for _, s := range rec.Sources() {
			received += s.Frames
		}
		if received >= delivered {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flushArchive archives everything left in the buffer, the open hour too.
func flushArchive(cfg config.Config, log *slog.Logger) error {
	db, err := wire.OpenBuffer(cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	return compactor.New(db, wire.Compactor(cfg, log, nil)).RunOnce(context.Background()).Err
}

func demoReport(w io.Writer, root string) error {
	files := parquetFiles(root)
	fmt.Fprintf(w, "\n%d Parquet files under %s:\n", len(files), root)
	const show = 8
	for i, f := range files {
		if i == show {
			fmt.Fprintf(w, "  ... and %d more\n", len(files)-show)
			break
		}
		fmt.Fprintf(w, "  %s (%s)\n", f.Path, status.HumanBytes(f.Size))
	}
	n, problems := archive.VerifyTree(root)
	for _, p := range problems {
		fmt.Fprintf(w, "  FAIL %s: %v\n", p.Path, p.Err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo: %d archive problems", len(problems))
	}
	fmt.Fprintf(w, "all %d files verified (lablog verify %s)\n\n", n, root)
	if len(files) > 0 {
		// A sample of the data with lablog's own reader: nothing to install.
		if err := cmdHead([]string{"-n", "5", files[0].Path}, w, w); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, `
More rows: lablog head -n 20 FILE. To query them all, optionally with DuckDB
(not packaged by Debian: https://duckdb.org, or npm's @duckdb/node-api):

  duckdb -c "SELECT stream, kind, count(*) AS rows, count(DISTINCT \"user\") AS users
             FROM read_parquet('%s/**/*.parquet', hive_partitioning = true, union_by_name = true)
             GROUP BY ALL ORDER BY ALL"
`, root)
	return nil
}

func archiveSize(root string) (files int, bytes int64) {
	for _, f := range parquetFiles(root) {
		files++
		bytes += f.Size
	}
	return files, bytes
}

// parquetFiles lists the published files under root.
func parquetFiles(root string) []archive.File {
	files, _ := archive.Files(root) // the demo lists what it can
	return files
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
