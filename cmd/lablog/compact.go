package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
)

func cmdCompact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compact", "[--config FILE] [--open-hours]",
		"Archive the buffer's closed hours to Parquet now, with the daemon stopped\n(while it runs, send it SIGUSR1 instead: systemctl kill -s USR1 lablog).")
	open := fs.Bool("open-hours", false, "also archive the current, still open hour")
	cfg, _, stopProfile, err := parseProfiled(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	log := newLogger(stderr, slog.LevelInfo)
	defer limitMemory(compactMemoryLimit)()
	db, err := wire.OpenBuffer(cfg, log)
	if errors.Is(err, buffer.ErrLocked) {
		return fmt.Errorf("%w\nthe running daemon compacts on its own schedule; to compact now, send it SIGUSR1 (systemctl kill -s USR1 lablog)", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	faults := wire.OpenFaults(cfg, log)
	defer faults.Flush()
	q := db.Quarantined()
	if q != "" {
		// The daemon's next start sees only the fresh buffer: record the
		// quarantine where its status page will show it.
		log.Error("BUFFER WAS CORRUPT: it was set aside and a fresh one started", "quarantined", q)
		faults.Report(fault.BufferQuarantined, q, 1)
	}
	// The analytics store consumes records before they leave the buffer.
	store, err := analytics.OpenStore(db, analytics.Options{Logger: log})
	if err != nil {
		return err
	}
	opts := wire.Compactor(cfg, log, faults)
	opts.OpenHours = opts.OpenHours || *open
	opts.BeforeSettle = store.BeforeSettle
	res := compactor.New(db, opts).RunOnce(ctx)
	fmt.Fprintf(stdout, "published %d files, %d records, %d bytes\n", res.Files, res.Records, res.Bytes)
	if res.SetAside > 0 {
		fmt.Fprintf(stdout, "set aside %d damaged records in %s (not archived)\n", res.SetAside, db.DamagedDir())
	}
	if res.Err != nil {
		return res.Err
	}
	// Finished, but records did not reach the archive: exit 3, so a script
	// or a person running it by hand cannot take it for a clean run.
	var problems []string
	if q != "" {
		problems = append(problems, "the buffer was corrupt and was set aside as "+q+" (its records not archived)")
	}
	if res.SetAside > 0 {
		problems = append(problems, fmt.Sprintf("%d damaged records set aside in %s (not archived)", res.SetAside, db.DamagedDir()))
	}
	if len(problems) > 0 {
		return doneWithProblems("%s", strings.Join(problems, "; "))
	}
	return nil
}
