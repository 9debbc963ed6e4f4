package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/record/buffer"
)

// cmdAnalytics rebuilds the learning-analytics server's matrices,
// indicators and pictures from what lablog recorded (or from the old
// client's files).
func cmdAnalytics(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("analytics", "--archive DIR [--buffer FILE] | --jsonl FILE | --logs DIR [--compare DIR] [--since T] [--until T] --out DIR",
		"Rebuild each student's transition matrix ({user}-{exp}-{course}-adjacency.csv, as the\n"+
			"learning-analytics server wrote it), indicators.json, an SVG graph per student and\n"+
			"report.html in --out, from one input:\n"+
			"  --archive  lablog's Parquet archive, plus --buffer for the hour not yet archived\n"+
			"             (read-only; refused while lablog run holds it)\n"+
			"  --jsonl    a JSON-lines file of frames, one per line\n"+
			"  --logs     the old Python client's folder ({user}-{hardware}-{exp}-{course}.json\n"+
			"             and {user}-{exp}-{course}-adjacency.csv, added in)\n"+
			"--since/--until (RFC 3339 or YYYY-MM-DD, UTC) keep what was received in [since, until)\n"+
			"(for --jsonl and --logs: what was sent, by t). docs/analytics.md, \"Learning analytics\".")
	archiveDir := fs.String("archive", "", "archive `folder` (Parquet files written by lablog)")
	bufferFile := fs.String("buffer", "", "buffer `file` to read with --archive (the daemon must be stopped)")
	jsonlFile := fs.String("jsonl", "", "JSON-lines `file` of frames")
	logsDir := fs.String("logs", "", "the old Python analytics client's data `folder`")
	compareDir := fs.String("compare", "", "`folder` of comparison graphs (e.g. the server's comparison_graphs)")
	since := fs.String("since", "", "keep messages from this `time` on")
	until := fs.String("until", "", "keep messages before this `time`")
	out := fs.String("out", "", "output `folder` (created if missing)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	inputs := 0
	for _, s := range []string{*archiveDir, *jsonlFile, *logsDir} {
		if s != "" {
			inputs++
		}
	}
	if inputs != 1 {
		return usageError(fs, stderr, "want exactly one of --archive, --jsonl, --logs")
	}
	if *bufferFile != "" && *archiveDir == "" {
		return usageError(fs, stderr, "--buffer goes with --archive")
	}
	if *out == "" {
		return usageError(fs, stderr, "--out required")
	}
	var w analytics.Window
	var err error
	if w.Since, err = parseWhen(*since); err != nil {
		return usageError(fs, stderr, "--since: %v", err)
	}
	if w.Until, err = parseWhen(*until); err != nil {
		return usageError(fs, stderr, "--until: %v", err)
	}
	comps, err := analytics.LoadComparisons(*compareDir)
	if err != nil {
		return err
	}

	b := analytics.NewBuilder()
	progress := newProgress(stderr)
	switch {
	case *archiveDir != "":
		held, err := b.ReadArchive(*archiveDir, w, func(done, total int) {
			progress.report(done == total, "analytics: %d/%d archive files, %d messages", done, total, b.Stats.Messages)
		})
		if err != nil {
			return err
		}
		if *bufferFile != "" {
			if err := b.ReadBuffer(*bufferFile, w, held); err != nil {
				if errors.Is(err, buffer.ErrLocked) {
					return fmt.Errorf("%w: lablog is running on this buffer; its records reach the archive at the next compaction (SIGUSR1 compacts now), or stop it first", err)
				}
				return err
			}
		}
	case *jsonlFile != "":
		f, err := os.Open(*jsonlFile)
		if err != nil {
			return fmt.Errorf("analytics: %w", err)
		}
		err = b.ReadJSONL(f, w)
		f.Close()
		if err != nil {
			return fmt.Errorf("analytics: %s: %w", *jsonlFile, err)
		}
	case *logsDir != "":
		skipped, err := b.ReadLogsDir(*logsDir, w)
		if err != nil {
			return err
		}
		if len(skipped) > 0 {
			fmt.Fprintf(stderr, "analytics: skipped %d files that are neither logs nor matrices of a known experiment (e.g. %s)\n", len(skipped), skipped[0])
		}
	}
	r := analytics.Analyse(b, comps)
	if err := analytics.WriteAll(*out, r); err != nil {
		return err
	}
	s := r.Stats
	fmt.Fprintf(stdout, "%d graphs from %d commands in %d messages written to %s\n", len(r.Graphs), s.Commands, s.Messages, *out)
	fmt.Fprintf(stdout, "where the reference differs: %d glued frames split, %d commands of another experiment skipped (%d graphs it lost), %d one-hardware graphs sorted by t\n",
		s.GluedFrames, s.ForeignCommands, s.GraphsLostByRef, s.UnsortedSingleHW)
	if s.NoKey+s.NoTime+s.UnknownExp > 0 {
		fmt.Fprintf(stdout, "not counted: %d commands without user/exp/course, %d without t, %d of an unknown experiment\n", s.NoKey, s.NoTime, s.UnknownExp)
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a UTC date; "" is the zero time.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-11-26T14:00:00Z) nor a date (2026-11-26)", s)
}

// progress prints a line on long runs: at most one a second, and the last.
type progress struct {
	w     io.Writer
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer) *progress {
	now := time.Now()
	return &progress{w: w, start: now, last: now}
}

func (p *progress) report(final bool, format string, args ...any) {
	now := time.Now()
	if now.Sub(p.last) < time.Second && (!final || p.last == p.start) {
		return // at most a line a second; short runs stay quiet
	}
	p.last = now
	fmt.Fprintf(p.w, strings.TrimSuffix(format, "\n")+" (%s)\n", append(args, now.Sub(p.start).Round(time.Second))...)
}
