package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/practable/lablog/internal/config"
)

// profileEnv names a file to write a CPU profile of the whole run to: a
// hook for performance work (go tool pprof dist/lablog FILE).
const profileEnv = "LABLOG_CPUPROFILE"

// startProfile starts the CPU profile when profileEnv asks for one and
// returns the function that ends it.
func startProfile() (stop func(), err error) {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", profileEnv, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
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
