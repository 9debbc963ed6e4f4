package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/salvage"
)

func cmdSalvage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("salvage", "[--config FILE] QUARANTINED",
		"Archive every record that can be read from a quarantined buffer file\n"+
			"(buffer.db.corrupt-<time>) into the configured archive, each once, and\n"+
			"list what could not be read. lablog run and compact do this on their own;\n"+
			"running it again adds nothing. Exit status 3 when some of it was unreadable.")
	path := fs.String("config", defaultConfig, "configuration `file`")
	quarantined, err := parseOne(fs, args, "quarantined buffer file", stdout, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	root, err := archive.OpenRoot(cfg.Archive.Path, string(cfg.Archive.Require))
	if err != nil {
		return err
	}
	defer root.Close()
	rep, err := salvage.Salvage(ctx, root, quarantined, wire.Salvage(cfg, newLogger(stderr, slog.LevelInfo)))
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep)
	if rep.Problems() {
		return doneWithProblems("%d records of %s could not be read", rep.Unreadable, quarantined)
	}
	return nil
}
