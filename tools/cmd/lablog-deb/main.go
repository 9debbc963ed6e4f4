// Command lablog-deb builds lablog's Debian packages (make deb): one per
// architecture, from binaries already built, into dist/.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/practable/lablog/tools/debpkg"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lablog-deb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lablog-deb", flag.ContinueOnError)
	describe := fs.String("describe", "", "`git describe --tags --always --dirty` output the version comes from (required)")
	commits := fs.Int("commits", 0, "commits in the history (git rev-list --count HEAD), to order untagged builds")
	date := fs.Int64("date", 0, "build time, Unix seconds (the last commit's, for reproducible packages; default now)")
	host := fs.String("host", "dist/lablog", "lablog binary that runs here, of the same build (renders the unit, config, man page)")
	readme := fs.String("readme", "README.md", "README shipped as documentation")
	maintainer := fs.String("maintainer", "", `maintainer, "Name <address>" (required)`)
	bufferFormat := fs.Int("buffer-format", 0, "buffer format the packaged lablog reads (default: asked from --host; tests use an older one)")
	out := fs.String("out", "dist", "output `folder`")
	var binaries, keys multi
	fs.Var(&keys, "update-key", "`NAME.pub` (lablog update keygen) the packaged lablog trusts for signed updates (repeat)")
	fs.Var(&binaries, "binary", "ARCH=FILE: the lablog binary for a Debian architecture (repeat: amd64=dist/lablog)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *describe == "" || len(binaries) == 0 {
		return fmt.Errorf("--describe and at least one --binary ARCH=FILE are required")
	}
	version, err := debpkg.DebianVersion(*describe, *commits)
	if err != nil {
		return err
	}
	when := time.Now().UTC()
	if *date != 0 {
		when = time.Unix(*date, 0).UTC()
	}
	for _, b := range binaries {
		arch, file, ok := strings.Cut(b, "=")
		if !ok {
			return fmt.Errorf("--binary %q: want ARCH=FILE", b)
		}
		path, err := debpkg.Build(ctx, debpkg.Spec{
			Arch: arch, Version: version, Binary: file, Host: *host, Readme: *readme,
			Maintainer: *maintainer, UpdateKeys: keys, Date: when, BufferFormat: *bufferFormat, Out: *out,
		})
		if err != nil {
			return err
		}
		fmt.Println(path)
	}
	return nil
}

type multi []string

func (m *multi) String() string     { return strconv.Quote(strings.Join(*m, ",")) }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
