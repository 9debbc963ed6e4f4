package main

import (
	"fmt"
	"io"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/platform/version"
	"github.com/practable/lablog/internal/record/buffer"
)

func versionString() string { return version.Version }

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "[--buffer-format]", "Print lablog's version (from git describe at build time).\n"+
		"--buffer-format prints the buffer file format this lablog writes instead (the\nDebian package refuses a downgrade to a lablog that reads only an older one).")
	bufferFormat := fs.Bool("buffer-format", false, "print the buffer format this lablog writes, a number")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *bufferFormat {
		fmt.Fprintln(stdout, buffer.FormatVersion)
		return nil
	}
	fmt.Fprintln(stdout, "lablog", versionString())
	if failpoint.Enabled {
		fmt.Fprintln(stdout, failpoint.VersionNote)
	}
	return nil
}
