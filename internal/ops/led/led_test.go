package led

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLED makes a sysfs-like LED folder, as the kernel shows ACT on a Pi.
func fakeLED(t *testing.T, trigger string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"trigger": trigger, "brightness": "1", "delay_on": "500", "delay_off": "500", "max_brightness": "1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestWalkThroughStates(t *testing.T) {
	dir := fakeLED(t, "none rc-feedback kbd-scrolllock [mmc0] timer oneshot heartbeat default-on input")
	log, logs := logger()
	l := Open(dir, Options{Logger: log})
	var writes []string
	l.write = func(path, value string) error {
		writes = append(writes, filepath.Base(path)+"="+value)
		return writeAttr(path, value)
	}
	if l.Original() != "mmc0" {
		t.Fatalf("original trigger %q, want mmc0", l.Original())
	}
	for _, step := range []struct {
		state State
		want  []string
	}{
		{Heartbeat, []string{"trigger=heartbeat"}},
		{Heartbeat, nil}, // unchanged: no write
		{Blink, []string{"trigger=timer", "delay_on=100", "delay_off=100"}},
		{Solid, []string{"trigger=default-on"}},
		{Heartbeat, []string{"trigger=heartbeat"}},
	} {
		writes = nil
		l.Set(step.state)
		if !slices.Equal(writes, step.want) {
			t.Errorf("Set(%v) wrote %v, want %v", step.state, writes, step.want)
		}
		if len(step.want) > 0 {
			if got := read(t, dir, "trigger"); got != strings.TrimPrefix(step.want[0], "trigger=") {
				t.Errorf("after Set(%v) trigger file holds %q", step.state, got)
			}
		}
	}
	writes = nil
	l.Close()
	if want := []string{"trigger=none", "brightness=0", "trigger=mmc0"}; !slices.Equal(writes, want) {
		t.Errorf("Close wrote %v, want %v", writes, want)
	}
	if read(t, dir, "trigger") != "mmc0" || read(t, dir, "brightness") != "0" {
		t.Errorf("after Close: trigger %q brightness %q", read(t, dir, "trigger"), read(t, dir, "brightness"))
	}
	writes = nil
	l.Set(Blink)
	if writes != nil {
		t.Errorf("Set after Close wrote %v", writes)
	}
	if logs.Len() != 0 {
		t.Errorf("unexpected logs: %s", logs)
	}
}

// An LED whose trigger was none is left off.
func TestCloseWithOriginalNone(t *testing.T) {
	dir := fakeLED(t, "[none] timer heartbeat default-on")
	l := Open(dir, Options{})
	l.Set(Solid)
	l.Close()
	if read(t, dir, "trigger") != "none" || read(t, dir, "brightness") != "0" {
		t.Errorf("trigger %q brightness %q, want none and 0", read(t, dir, "trigger"), read(t, dir, "brightness"))
	}
}

func TestMissingLEDLogsOnce(t *testing.T) {
	log, logs := logger()
	l := Open(filepath.Join(t.TempDir(), "no-such-led"), Options{Logger: log})
	for _, s := range []State{Heartbeat, Blink, Solid, Off} {
		l.Set(s)
	}
	l.Close()
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "no usable LED") {
		t.Errorf("want exactly one log line, got %d:\n%s", n, logs)
	}
}

// The timer's delay attributes appear owned by root, so the service user
// may not write them: the LED still blinks, at the kernel's default rate,
// and says so once.
func TestBlinkWithoutDelayAttributes(t *testing.T) {
	dir := fakeLED(t, "[mmc0] timer heartbeat")
	for _, f := range []string{"delay_on", "delay_off"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	log, logs := logger()
	l := Open(dir, Options{Logger: log})
	l.Set(Blink)
	l.Set(Heartbeat)
	l.Set(Blink)
	if got := read(t, dir, "trigger"); got != "timer" {
		t.Errorf("trigger %q, want timer", got)
	}
	l.Close()
	if got := read(t, dir, "trigger"); got != "mmc0" {
		t.Errorf("trigger after Close %q, want mmc0", got)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "default rate") {
		t.Errorf("want exactly one log line, got %d:\n%s", n, logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "delay_on")); err == nil {
		t.Error("a missing attribute was created")
	}
}

// A trigger that cannot be written (the LED went away) is logged once and
// the LED is left alone after that.
func TestWriteFailureLogsOnce(t *testing.T) {
	dir := fakeLED(t, "[mmc0] heartbeat")
	log, logs := logger()
	l := Open(dir, Options{Logger: log})
	l.Set(Heartbeat)
	if err := os.Remove(filepath.Join(dir, "trigger")); err != nil {
		t.Fatal(err)
	}
	l.Set(Solid)
	l.Set(Blink)
	l.Close()
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "cannot drive the LED") {
		t.Errorf("want exactly one log line, got %d:\n%s", n, logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "trigger")); err == nil {
		t.Error("a missing attribute was created")
	}
}

func TestRunFollowsStateAndRestores(t *testing.T) {
	dir := fakeLED(t, "none [actpwr] timer heartbeat default-on")
	l := Open(dir, Options{})
	var mu sync.Mutex
	state := Heartbeat
	seen := make(chan string, 100)
	l.write = func(path, value string) error {
		if filepath.Base(path) == "trigger" {
			seen <- value
		}
		return writeAttr(path, value)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, l, func() State { mu.Lock(); defer mu.Unlock(); return state }, time.Millisecond)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("trigger %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no trigger write, want %q", want)
		}
	}
	expect("heartbeat")
	mu.Lock()
	state = Solid
	mu.Unlock()
	expect("default-on")
	cancel()
	<-done
	expect("none")
	expect("actpwr")
}
