package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/practable/lablog/internal/cloud/fleet"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
)

func cmdFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fleet", "[--config FILE] [--site S] [--json]",
		"List what the sites of a fleet uploaded into the bucket of FILE's upload section\n"+
			"(its endpoint, bucket, prefix and credentials; not only its own site): per site and\n"+
			"stream the first and last hour, the hours and files present, and the gaps, hours\n"+
			"without a file between the first and the last. lablog writes no file for an hour\n"+
			"without a single frame or event, so a gap is data missing or a stream that was silent.")
	path := fs.String("config", defaultConfig, "configuration `file` with an upload section")
	site := fs.String("site", "", "only this `site`")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError(fs, stderr, "takes no arguments")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if !cfg.Upload.Enabled() {
		return fmt.Errorf("fleet: %s has no upload section (upload.endpoint is empty)", *path)
	}
	creds, err := upload.LoadCredentials(cfg.Upload.CredentialsFile)
	if err != nil {
		return err
	}
	opts := wire.Upload(cfg)
	objs, err := fleet.List(ctx, upload.NewClient(opts, creds), cfg.Upload.Bucket, cfg.Upload.Prefix)
	if err != nil {
		return err
	}
	streams, skipped := fleet.Summarise(cfg.Upload.Prefix, objs)
	if *site != "" {
		kept := streams[:0]
		for _, s := range streams {
			if s.Site == *site {
				kept = append(kept, s)
			}
		}
		streams = kept
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"bucket": cfg.Upload.Bucket, "prefix": cfg.Upload.Prefix, "streams": streams, "other_objects": skipped})
	}
	const hour = "2006-01-02T15"
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tSTREAM\tFIRST\tLAST\tHOURS\tFILES\tBYTES\tGAPS")
	gaps := 0
	for _, s := range streams {
		var g []string
		for _, x := range s.Gaps {
			gaps += x.Hours
			if x.Hours == 1 {
				g = append(g, x.From.Format(hour))
			} else {
				g = append(g, fmt.Sprintf("%s..%s (%dh)", x.From.Format(hour), x.To.Format(hour), x.Hours))
			}
		}
		gapText := "-"
		if len(g) > 0 {
			gapText = strings.Join(g, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Site, s.Stream, s.First.Format(hour), s.Last.Format(hour),
			s.Hours, s.Files, s.Bytes, gapText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d streams, %d missing hours; %d other objects under s3://%s/%s (%s)\n", len(streams), gaps, skipped,
		cfg.Upload.Bucket, cfg.Upload.Prefix, time.Now().UTC().Format(time.RFC3339))
	return nil
}
