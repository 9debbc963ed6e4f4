package main

import (
	"fmt"
	"io"

	"github.com/practable/lablog/internal/version"
)

func versionString() string { return version.Version }

func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", "Print lablog's version (from git describe at build time).")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "lablog", versionString())
	return nil
}
