package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/practable/lablog/internal/cloud/merge"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
)

func cmdMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("merge", "[--config FILE] [--date YYYY-MM-DD] [--part-rows N]",
		"Merge a day of the fleet's hourly objects in the bucket of FILE's upload section (every\n"+
			"site) into <prefix>/compacted/date=<day>/part-NNNNN.parquet, sorted by site, stream\n"+
			"and received time, with site and stream columns. Each hourly object is verified\n"+
			"first; the hourly objects stay the record, and a later merge of the day replaces\n"+
			"the parts. Run it daily, after the day's last uploads (e.g. from cron at 03:00).")
	path := fs.String("config", defaultConfig, "configuration `file` with an upload section")
	day := fs.String("date", time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), "the UTC `day` to merge (default yesterday)")
	partRows := fs.Int64("part-rows", 5_000_000, "rows per part `file`")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(fs, stderr, "takes no arguments")
	}
	date, err := time.Parse(time.DateOnly, *day)
	if err != nil {
		return usageError(fs, stderr, "--date %q: want YYYY-MM-DD", *day)
	}
	if *partRows <= 0 {
		return usageError(fs, stderr, "--part-rows must be positive")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if !cfg.Upload.Enabled() {
		return fmt.Errorf("merge: %s has no upload section (upload.endpoint is empty)", *path)
	}
	creds, err := upload.LoadCredentials(cfg.Upload.CredentialsFile)
	if err != nil {
		return err
	}
	res, err := merge.Day(ctx, upload.NewClient(wire.Upload(cfg), creds), merge.Options{
		Bucket: cfg.Upload.Bucket, Prefix: cfg.Upload.Prefix, Date: date, PartRows: *partRows,
		Logger: newLogger(stderr, slog.LevelInfo),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "merged %d hourly objects, %d rows of %s into %d parts:\n", res.Objects, res.Rows, *day, len(res.Parts))
	for _, k := range res.Parts {
		fmt.Fprintf(stdout, "  s3://%s/%s\n", cfg.Upload.Bucket, k)
	}
	if len(res.Removed) > 0 {
		fmt.Fprintf(stdout, "removed %d parts of an earlier merge of the day\n", len(res.Removed))
	}
	return nil
}
