package main

import (
	"fmt"
	"os"
	"runtime/pprof"
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
