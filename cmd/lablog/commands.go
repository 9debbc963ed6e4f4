package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/practable/lablog/internal/analytics"
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

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", "Print lablog's version (from git describe at build time).")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "lablog", versionString())
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "[--config FILE] [--debug]",
		"Record the configured streams until SIGTERM or SIGINT (the daemon; the service runs this).\nSIGUSR1 compacts now.")
	path := fs.String("config", defaultConfig, "configuration `file`")
	debug := fs.Bool("debug", false, "log at debug level (every connection attempt, commit and rule check)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
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
	fs := newFlags("compact", "[--config FILE] [--open-hours]",
		"Archive the buffer's closed hours to Parquet now, with the daemon stopped\n(while it runs, send it SIGUSR1 instead: systemctl kill -s USR1 lablog).")
	path := fs.String("config", defaultConfig, "configuration `file`")
	open := fs.Bool("open-hours", false, "also archive the current, still open hour")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
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
	// The analytics store consumes records before they leave the buffer.
	store, err := analytics.OpenStore(db, log)
	if err != nil {
		return err
	}
	opts := recorder.CompactorOptions(cfg, log, faults)
	opts.OpenHours = opts.OpenHours || *open
	opts.BeforeSettle = store.BeforeSettle
	res := compactor.New(db, opts).RunOnce(ctx)
	fmt.Fprintf(stdout, "published %d files, %d records, %d bytes\n", res.Files, res.Records, res.Bytes)
	if res.SetAside > 0 {
		fmt.Fprintf(stdout, "set aside %d damaged records in %s (not archived)\n", res.SetAside, db.DamagedDir())
	}
	return res.Err
}

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "DIR",
		"Check every Parquet file under DIR (an archive drive, or a copy of it): each file\nreads back, its rows match its name and footer, and no two files hold the same rows.\nExits non-zero on any problem, and for a folder with no files at all.")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(fs, stderr, "want one folder, got %d arguments", fs.NArg())
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
	const about = "lablog config check FILE | lablog config example"
	if len(args) == 0 || isHelp(args[0]) {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintf(w, "Usage: %s\n\n  check FILE  validate a configuration file, and read its relay tokens\n  example     print a commented example configuration with every default\n", about)
		if len(args) == 0 {
			return errUsage
		}
		return errHelp
	}
	switch args[0] {
	case "check":
		fs := newFlags("config check", "FILE",
			"Validate a configuration file: unknown keys, bad values and bad stream names are\nerrors with their line number. Also reads every stream's relay token and warns\nabout tokens that cannot work or expire soon.")
		if err := parseFlags(fs, args[1:], stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usageError(fs, stderr, "want one file, got %d arguments", fs.NArg())
		}
		cfg, err := config.Load(fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %s: %d streams\n", fs.Arg(0), len(cfg.Streams()))
		checkTokens(stdout, cfg)
		return nil
	case "example":
		fs := newFlags("config example", "", "Print a commented example configuration with every key and its default.")
		if err := parseFlags(fs, args[1:], stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usageError(fs, stderr, "takes no arguments")
		}
		_, err := stdout.Write(config.Example())
		return err
	}
	fmt.Fprintf(stderr, "lablog config: unknown command %q\nusage: %s\n", args[0], about)
	return errUsage
}
