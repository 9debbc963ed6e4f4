package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/practable/lablog/internal/config"
)

// Hooks for performance work (go tool pprof dist/lablog FILE): profileEnv
// names a file for a CPU profile of the whole run, heapProfileEnv one for
// the heap's allocations and what was live at the last collection before
// the command ends (GODEBUG=memprofilerate=1 samples every allocation).
const (
	profileEnv     = "LABLOG_CPUPROFILE"
	heapProfileEnv = "LABLOG_HEAPPROFILE"
)

// startProfile starts the CPU profile when profileEnv asks for one and
// returns the function that ends it and writes the heap profile, when
// heapProfileEnv asks for one.
func startProfile() (stop func(), err error) {
	stopHeap := func() {}
	if path := os.Getenv(heapProfileEnv); path != "" {
		stopHeap = func() {
			if err := writeHeapProfile(path); err != nil {
				fmt.Fprintf(os.Stderr, "lablog: %s: %v\n", heapProfileEnv, err)
			}
		}
	}
	path := os.Getenv(profileEnv)
	if path == "" {
		return stopHeap, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close(); stopHeap() }, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseProfiled parses the flags of a long-running command (run, compact),
// loads the configuration at its --config flag's path and starts the CPU
// profile if asked for; the caller defers stop.
func parseProfiled(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (cfg config.Config, path string, stop func(), err error) {
	fs.StringVar(&path, "config", defaultConfig, "configuration `file`")
	if err = parseFlags(fs, args, stdout, stderr); err != nil {
		return cfg, path, nil, err
	}
	if cfg, err = config.Load(path); err != nil {
		return cfg, path, nil, err
	}
	stop, err = startProfile()
	return cfg, path, stop, err
}
