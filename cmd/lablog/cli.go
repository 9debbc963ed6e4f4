package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// errUsage means the usage was already printed, to stderr: exit non-zero.
var errUsage = errors.New("usage")

// errHelp means help was asked for and printed, to stdout: run returns nil.
var errHelp = errors.New("help")

// newFlags makes the flag set of `lablog name`, whose usage (printed for
// --help and after a usage error) is the synopsis, what it does and its flags.
func newFlags(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("lablog "+name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: lablog %s %s\n\n%s\n", name, synopsis, about)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args with fs. --help prints the usage to stdout and
// returns errHelp; a bad flag prints the problem and the usage to stderr and
// returns errUsage.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	usage := fs.Usage
	fs.Usage = func() {} // flag would print it to one writer for both cases
	fs.SetOutput(stderr)
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return errHelp
	case err != nil: // flag has printed the problem
		fmt.Fprintln(stderr)
		fs.Usage()
		return errUsage
	}
	return nil
}

// usageError prints a problem with the arguments and then fs's usage.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, args ...any) error {
	fmt.Fprintf(stderr, "%s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.SetOutput(stderr)
	fs.Usage()
	return errUsage
}

// isHelp says whether arg asks for help, for commands with sub-commands.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}
