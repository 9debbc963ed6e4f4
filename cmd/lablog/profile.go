package main

import (
	"fmt"
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

// loadConfigProfiled loads the configuration at path and starts the CPU
// profile if asked for, as the long-running commands (run, compact) do;
// the caller defers stop.
func loadConfigProfiled(path string) (cfg config.Config, stop func(), err error) {
	if cfg, err = config.Load(path); err != nil {
		return cfg, nil, err
	}
	stop, err = startProfile()
	return cfg, stop, err
}
