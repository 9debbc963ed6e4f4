package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux that lablog runs on (amd64, arm64).
const clockTicks = 100

// cpuSeconds is the user plus system CPU time of pid so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	// The command name may hold spaces: fields start after its ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short /proc stat", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu of %d: bad /proc stat", pid)
	}
	return (ut + st) / clockTicks, nil
}

// memory is resident memory in bytes: anonymous (heap, stacks) and
// file-backed (the binary, and bbolt's mapped pages).
type memory struct {
	RSS, Anon, File, HWM float64
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("memory of %d: %w", pid, err)
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb * 1024
		case "RssAnon:":
			m.Anon = kb * 1024
		case "RssFile:":
			m.File = kb * 1024
		case "VmHWM:":
			m.HWM = kb * 1024
		}
	}
	return m, nil
}

// memSampler keeps the peaks of a process's memory, sampled every 100 ms.
type memSampler struct {
	mu   sync.Mutex
	peak memory
	last memory
	stop context.CancelFunc
	done chan struct{}
}

func sampleMemory(ctx context.Context, pid int) *memSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &memSampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			s.sample(pid)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *memSampler) sample(pid int) {
	m, err := readMemory(pid)
	if err != nil {
		return // the process has ended
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = m
	s.peak.RSS = max(s.peak.RSS, m.RSS)
	s.peak.Anon = max(s.peak.Anon, m.Anon)
	s.peak.File = max(s.peak.File, m.File)
	s.peak.HWM = max(s.peak.HWM, m.HWM)
}

// reset forgets the peaks so far (start-up is not the figure).
func (s *memSampler) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = s.last
}

func (s *memSampler) peaks() memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *memSampler) current() memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *memSampler) close() {
	s.stop()
	<-s.done
}
