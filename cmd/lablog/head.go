package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
)

// cmdHead prints the first rows of an archive file: a look at the data that
// needs no Parquet tool on the machine.
func cmdHead(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("head", "[-n 5] FILE|DIR",
		"Print the first rows of a Parquet file written by lablog (of the first file under DIR,\nby name), a few columns each, long values cut. For analysis, read the files with\nDuckDB, pandas or polars (docs/analytics.md, \"Reading the archive\").")
	n := fs.Int("n", 5, "number of rows")
	path, err := parseOne(fs, args, "file or folder", stdout, stderr)
	if err != nil {
		return err
	}
	if st, err := os.Stat(path); err != nil {
		return fmt.Errorf("head: %w", err)
	} else if st.IsDir() {
		files, err := archive.Files(path) // in lexical order: the first stream's first hour
		if err != nil {
			return fmt.Errorf("head: %w", err)
		}
		if len(files) == 0 {
			return fmt.Errorf("head: no Parquet files under %s", path)
		}
		path = files[0].Path
	}
	rows, meta, err := archive.ReadRows(path)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	fmt.Fprintf(stdout, "%s: stream %s, %d rows; the first %d:\n", path, meta.Stream, len(rows), min(*n, len(rows)))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "received_at\tseq\tkind\tuser\ttype\tpayload / raw / error / detail")
	for _, r := range rows[:min(*n, len(rows))] {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.ReceivedTime().Format(time.DateTime+".000"), r.Seq, r.Kind,
			orDash(r.User), orDash(r.Type), cut(firstOf(r.Payload, r.Raw, r.Error, r.Detail), 60))
	}
	return tw.Flush()
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func firstOf(ss ...*string) string {
	for _, s := range ss {
		if s != nil {
			return *s
		}
	}
	return "-"
}

// cut shortens s to at most n runes on one line.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
