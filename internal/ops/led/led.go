// Package led shows lablog's health on a board LED through its sysfs folder
// (/sys/class/leds/ACT on a Raspberry Pi), so a technician can tell from
// across the room: a heartbeat is all well, a fast blink is a stream not
// connected, solid on is the archive drive unavailable (or a fault waiting
// to be acknowledged on the status page). The LED's own
// trigger is put back when lablog stops.
package led

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/platform/logkey"
)

// State is what the LED shows.
type State int

const (
	Off       State = iota // lablog not running
	Heartbeat              // every stream recording, archive healthy
	Blink                  // a stream is not connected (or nothing is being recorded)
	Solid                  // the archive drive is unavailable (buffering only), or a fault to acknowledge
)

func (s State) String() string {
	switch s {
	case Off:
		return "off"
	case Heartbeat:
		return "heartbeat"
	case Blink:
		return "fast blink"
	case Solid:
		return "solid"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// blinkMillis is the on and off time of the fast blink: 5 Hz reads as
// "something is wrong" and is unlike any of the Pi's own patterns.
const blinkMillis = "100"

// LED drives one sysfs LED. Every method is a no-op once the LED proved
// missing or unwritable: the LED is a convenience and must never stop lablog.
type LED struct {
	dir      string
	log      *slog.Logger
	original string // trigger found at Open, restored by Close
	current  State
	shown    bool // current has been written
	broken   bool
	// slowWarned: the blink's timing could not be set, and it was logged.
	slowWarned bool

	// write sets one attribute; tests record the order of writes.
	write func(path, value string) error
}

// Options configure an LED.
type Options struct {
	// Logger is where the LED's problems are told; default slog.Default().
	Logger *slog.Logger
}

// Open takes over the LED in dir. A missing or unreadable LED is logged
// once and gives an LED that does nothing.
func Open(dir string, o Options) *LED {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	l := &LED{dir: dir, log: log.With("led", dir), write: writeAttr}
	data, err := os.ReadFile(filepath.Join(dir, "trigger"))
	if err != nil {
		l.fail("no usable LED; going on without it", err)
		return l
	}
	l.original = activeTrigger(string(data))
	return l
}

// activeTrigger picks the [bracketed] entry of a sysfs trigger file, or
// "none" when there is none.
func activeTrigger(list string) string {
	for _, f := range strings.Fields(list) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return f[1 : len(f)-1]
		}
	}
	return "none"
}

// Original is the trigger the LED had before Open ("" if missing).
func (l *LED) Original() string { return l.original }

// Set shows s. It writes only when s differs from what is shown.
func (l *LED) Set(s State) {
	if l.broken || (l.shown && s == l.current) {
		return
	}
	var err error
	switch s {
	case Heartbeat:
		err = l.attr("trigger", "heartbeat")
	case Blink:
		// The timer trigger creates delay_on and delay_off when chosen,
		// owned by root: the service user may not write them. Blinking at
		// the kernel's default rate still says "not heartbeat".
		err = l.attr("trigger", "timer")
		if err == nil {
			derr := errors.Join(l.attr("delay_on", blinkMillis), l.attr("delay_off", blinkMillis))
			if derr != nil && !l.slowWarned {
				l.slowWarned = true
				l.log.Warn("cannot set the fast blink's timing; blinking at the kernel's default rate", logkey.Err, derr)
			}
		}
	case Solid:
		err = l.attr("trigger", "default-on")
	default:
		err = errors.Join(l.attr("trigger", "none"), l.attr("brightness", "0"))
	}
	if err != nil {
		l.fail("cannot drive the LED; going on without it", err)
		return
	}
	l.current, l.shown = s, true
}

// Close turns the LED off and gives it back its original trigger.
func (l *LED) Close() {
	if l.broken {
		return
	}
	l.Set(Off)
	if l.original != "none" && !l.broken {
		if err := l.attr("trigger", l.original); err != nil {
			l.log.Warn("cannot restore the LED's trigger", "trigger", l.original, logkey.Err, err)
		}
	}
	l.broken = true // closed: later calls do nothing
}

func (l *LED) attr(name, value string) error {
	return l.write(filepath.Join(l.dir, name), value)
}

func (l *LED) fail(msg string, err error) {
	l.broken = true
	l.log.Warn(msg, logkey.Err, err)
}

// writeAttr writes a sysfs attribute. No O_CREATE: a missing attribute is
// an error, not a new file in someone's folder.
func writeAttr(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// Run shows state() every interval until ctx ends, then closes l.
func Run(ctx context.Context, l *LED, state func() State, every time.Duration) {
	defer l.Close()
	l.Set(state())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Set(state())
		}
	}
}
