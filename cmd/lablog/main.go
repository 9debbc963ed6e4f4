// Command lablog records the logging streams of remote laboratories durably
// and archives them as Parquet. main only wires: the work is in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/practable/lablog/internal/platform/failpoint"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code := exitStatus(err)
	if code != 0 && !errors.Is(err, errUsage) { // the usage is printed already
		fmt.Fprintln(os.Stderr, "lablog:", err)
	}
	_ = failpoint.Hit(failpoint.AtExit)
	os.Exit(code)
}

const usage = `lablog records remote-lab logging streams and archives them as Parquet.

Usage:
  lablog run [--config FILE] [--debug]
                                      record the configured streams (the daemon)
  lablog demo [--dir D] [--duration 30s] [--streams N] [--rate 5] [--listen ADDR]
                                      record a simulated lab, then show the files
  lablog head [-n 5] FILE|DIR         print the first rows of a Parquet file
  lablog compact [--config FILE] [--open-hours]
                                      archive closed hours now (daemon stopped)
  lablog salvage [--config FILE] QUARANTINED
                                      archive what can be read of a quarantined buffer
  lablog verify DIR                   check every Parquet file under DIR
  lablog analytics --archive DIR [--buffer FILE] | --jsonl FILE | --logs DIR [--compare DIR]
                   [--since T] [--until T] --out DIR
                                      students' transition matrices, indicators, graphs, report
  lablog pseudonym [--config FILE] ID...
                                      the pseudonyms stored for user IDs (privacy.pseudonymise)
  lablog bench [--runs 3] [--duration 8s] [--quick] [--only ingest,...] [--binary F]
                                      measure a lablog binary: ingest, baseline, memory, compaction
  lablog fleet [--config FILE] [--site S] [--json]
                                      list the sites, streams and hours in the upload bucket, and gaps
  lablog merge [--config FILE] [--date YYYY-MM-DD] [--part-rows N]
                                      merge a day of the bucket's hourly objects into compacted/ parts
  lablog subject export --user ID --out DIR [--config FILE] [--archive DIR] [--buffer FILE] [--bucket]
                                      every row of one student, as JSON lines and a summary
  lablog subject erase --user ID [--config FILE] [--bucket]
                                      erase one student everywhere, with a signed report (daemon stopped)
  lablog config check [--strict] FILE validate a configuration file (--strict: warnings fail)
  lablog config ready FILE            fail while FILE is still the example (the unit's condition)
  lablog config example               print a commented example configuration
  lablog config network FILE DIR      network.yaml -> NetworkManager keyfiles (the image's boot import)
  lablog tokens --secret-file F --access URL --streams spin30-41 [--lifetime 8760h] [--out DIR] [--write]
                                      mint relay tokens (off the device) into token files
  lablog install [--config FILE] [--print] [--root DIR] [--exec BIN] [--user lablog]
                                      install and enable the systemd service
  lablog uninstall [--root DIR]       stop, disable and remove the service
  lablog start | stop                 start or stop the installed service
  lablog status [--config FILE]       is the service running, and its /healthz
  lablog drive init [--yes] [--user lablog] DEVICE
                                      make a USB drive the archive drive (erases it)
  lablog drive mark DIR               mark a folder as an archive root (erases nothing)
  lablog simlab [--listen 127.0.0.1:8888] [--streams spin30-33] [--rate 5]
                                      serve a simulated lab alone (for the image test)
  lablog update keygen|sign|verify|apply|boot|keep ...
                                      signed updates, checked, rolled back if unhealthy
  lablog version [--buffer-format]    print the version (or the buffer format it writes)

lablog help COMMAND (or lablog COMMAND --help) describes a command and its flags.
`

// run is main without the process: tests call it in-process. Help asked
// for is not an error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	if isHelp(cmd) {
		if len(rest) > 0 && !isHelp(rest[0]) { // lablog help COMMAND
			return dispatch(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	if c, ok := commands[cmd]; ok {
		return c(ctx, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "lablog: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

// command runs a subcommand with the arguments after its name.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// commands is every subcommand by name (help is dispatch's).
var commands = map[string]command{
	"run":       cmdRun,
	"demo":      cmdDemo,
	"simlab":    cmdSimlab,
	"head":      noContext(cmdHead),
	"drive":     cmdDrive,
	"compact":   cmdCompact,
	"salvage":   cmdSalvage,
	"verify":    noContext(cmdVerify),
	"merge":     cmdMerge,
	"fleet":     cmdFleet,
	"subject":   cmdSubject,
	"analytics": noContext(cmdAnalytics),
	"pseudonym": noContext(cmdPseudonym),
	"bench":     cmdBench,
	"tokens":    noContext(cmdTokens),
	"config":    noContext(cmdConfig),
	"install":   cmdInstall,
	"uninstall": cmdUninstall,
	"start":     control("start"),
	"stop":      control("stop"),
	"status":    cmdStatus,
	"update":    cmdUpdate,
	"version":   noContext(cmdVersion),
	"--version": noContext(cmdVersion),
}

// noContext makes a command of one that is quick and never cancelled.
func noContext(f func(args []string, stdout, stderr io.Writer) error) command {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) error { return f(args, stdout, stderr) }
}

// control makes the start or stop command.
func control(op string) command {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		return cmdControl(op, args, stdout, stderr)
	}
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
