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

// Exit statuses of lablog (README, "Running it"): 0 done, 1 failed,
// 2 usage, 3 done with problems: the command finished, but something a
// person must look at happened (records set aside, a buffer quarantined,
// nothing published although there was work).
const (
	exitFailed   = 1
	exitUsage    = 2
	exitProblems = 3
)

// problemsError is the error of a command that finished with problems
// (exit 3); errors.Is(err, errProblems) finds it however it was wrapped.
type problemsError struct{ what string }

func (e *problemsError) Error() string        { return "done with problems: " + e.what }
func (e *problemsError) Is(target error) bool { return target == errProblems }

// errProblems matches any problemsError.
var errProblems = errors.New("done with problems")

// doneWithProblems says a command finished but what must be looked at.
func doneWithProblems(format string, a ...any) error {
	return &problemsError{what: fmt.Sprintf(format, a...)}
}

// exitStatus maps run's error to the process's exit status.
func exitStatus(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errProblems):
		return exitProblems
	default:
		return exitFailed
	}
}

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

// parseOne is parseFlags for a command that takes one argument: it returns
// that argument, or a usage error saying what it wants (a file, ...).
func parseOne(fs *flag.FlagSet, args []string, what string, stdout, stderr io.Writer) (string, error) {
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		return "", usageError(fs, stderr, "want one %s, got %d arguments", what, fs.NArg())
	}
	return fs.Arg(0), nil
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
