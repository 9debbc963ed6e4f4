package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/practable/lablog/internal/archive"
	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/compactor"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/fault"
	"github.com/practable/lablog/internal/recorder"
	"github.com/practable/lablog/internal/sdnotify"
	"github.com/practable/lablog/internal/version"
)

const defaultConfig = "/etc/lablog/lablog.yaml"

func versionString() string { return version.Version }

// parseFlags parses args with fs, printing errors and help to stderr.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage // flag has printed the problem (or -h's help)
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("lablog run", flag.ContinueOnError)
	path := fs.String("config", defaultConfig, "configuration `file`")
	debug := fs.Bool("debug", false, "log at debug level")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := newLogger(stderr, level)
	rec, err := recorder.Open(cfg, log)
	if err != nil {
		return err
	}
	ops, err := startOps(rec, cfg, log, opsOptions{Listen: cfg.Status.Listen, LEDPath: cfg.LED.Path, Notify: true})
	if err != nil {
		_ = rec.Close()
		return err
	}
	defer ops.Stop()
	// startOps told systemd READY (the buffer is open); say STOPPING as soon
	// as shutdown begins, before the queue is drained.
	stopping := context.AfterFunc(ctx, sdnotify.Notifier{Log: log}.Stopping)
	defer stopping()
	// SIGUSR1 asks for a compaction now (`systemctl kill -s USR1 lablog`).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			log.Info("compaction requested by SIGUSR1")
			rec.Compactor().Trigger()
		}
	}()
	log.Info("lablog recording", "version", versionString(), "streams", len(cfg.Streams()),
		"buffer", cfg.Buffer.Path, "archive", cfg.Archive.Path)
	return rec.Run(ctx)
}

func cmdCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lablog compact", flag.ContinueOnError)
	path := fs.String("config", defaultConfig, "configuration `file`")
	open := fs.Bool("open-hours", false, "also archive the current, still open hour")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	stopProfile, err := startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	log := newLogger(stderr, slog.LevelInfo)
	db, err := buffer.Open(cfg.Buffer.Path, buffer.Options{MaxSize: int64(cfg.Buffer.MaxSize), Logger: log})
	if errors.Is(err, buffer.ErrLocked) {
		return fmt.Errorf("%w\nthe running daemon compacts on its own schedule; to compact now, send it SIGUSR1 (systemctl kill -s USR1 lablog)", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	faults := recorder.OpenFaults(cfg, log)
	defer faults.Flush()
	if q := db.Quarantined(); q != "" {
		// The daemon's next start sees only the fresh buffer: record the
		// quarantine where its status page will show it.
		log.Error("BUFFER WAS CORRUPT: it was set aside and a fresh one started", "quarantined", q)
		faults.Report(fault.BufferQuarantined, q, 1)
	}
	opts := recorder.CompactorOptions(cfg, log, faults)
	opts.OpenHours = opts.OpenHours || *open
	res := compactor.New(db, opts).RunOnce(ctx)
	fmt.Fprintf(stdout, "published %d files, %d records, %d bytes\n", res.Files, res.Records, res.Bytes)
	if res.SetAside > 0 {
		fmt.Fprintf(stdout, "set aside %d damaged records in %s (not archived)\n", res.SetAside, db.DamagedDir())
	}
	return res.Err
}

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lablog verify", flag.ContinueOnError)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: lablog verify DIR")
		return errUsage
	}
	dir := fs.Arg(0)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("verify: %s is not a directory", dir)
	}
	files, problems := archive.VerifyTree(dir)
	for _, p := range problems {
		fmt.Fprintf(stdout, "FAIL %s: %v\n", p.Path, p.Err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("verify %s: %d problems in %d files", dir, len(problems), files)
	}
	if files == 0 {
		// An empty folder is most often a drive that is not mounted.
		hint := ""
		if _, err := os.Stat(filepath.Join(dir, archive.MarkerFile)); err != nil {
			hint = fmt.Sprintf(" and no %s marker: is the archive drive mounted?", archive.MarkerFile)
		}
		return fmt.Errorf("verify %s: no Parquet files%s", dir, hint)
	}
	fmt.Fprintf(stdout, "ok: %d files verified under %s\n", files, dir)
	return nil
}

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 2 && args[0] == "check":
		cfg, err := config.Load(args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %s: %d streams\n", args[1], len(cfg.Streams()))
		checkTokens(stdout, cfg)
		return nil
	case len(args) == 1 && args[0] == "example":
		_, err := stdout.Write(config.Example())
		return err
	}
	fmt.Fprintln(stderr, "usage: lablog config check FILE | lablog config example")
	return errUsage
}
