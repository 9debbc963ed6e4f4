// Package sdnotify tells systemd how lablog is doing (Type=notify): READY
// once the buffer is open, WATCHDOG pings only while the writer is healthy,
// so systemd restarts a lablog whose writer is stuck, STATUS lines for
// `systemctl status`, and STOPPING at shutdown. Outside systemd (no
// NOTIFY_SOCKET) every call does nothing.
package sdnotify

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/practable/lablog/internal/platform/logkey"
)

// Notifier sends the notifications. The zero value logs to slog.Default.
type Notifier struct {
	Logger *slog.Logger
}

func (n Notifier) log() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.Default()
}

func (n Notifier) send(state string) bool {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		n.log().Warn("sd_notify failed", "state", state, logkey.Err, err)
	}
	return sent
}

// Ready says start-up is done: the buffer is open and recording starts.
func (n Notifier) Ready() {
	if n.send(daemon.SdNotifyReady + "\nSTATUS=recording") {
		n.log().Info("told systemd we are ready")
	}
}

// Stopping says shutdown has begun (the buffer is being drained).
func (n Notifier) Stopping() {
	n.send(daemon.SdNotifyStopping + "\nSTATUS=stopping: committing what is queued")
}

// Interval is systemd's watchdog timeout (WatchdogSec), or 0 when the
// watchdog is off for this process.
func Interval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		slog.Default().Warn("watchdog settings unreadable; watchdog off", logkey.Err, err)
		return 0
	}
	return d
}

// Check reports whether lablog deserves a watchdog ping, and why not.
type Check func(now time.Time) (healthy bool, why string)

// Watchdog pings systemd every timeout/2 (as sd_watchdog_enabled(3)
// advises) while check says healthy, until ctx ends. A failing check stops
// the pings, so systemd ends and restarts lablog after timeout, and is
// reported once in STATUS and the log. It returns at once when timeout is 0.
func (n Notifier) Watchdog(ctx context.Context, timeout time.Duration, check Check) {
	if timeout <= 0 {
		return
	}
	t := time.NewTicker(timeout / 2)
	defer t.Stop()
	healthy := true
	for {
		ok, why := check(time.Now())
		switch {
		case ok && !healthy:
			n.log().Info("watchdog: healthy again; pinging systemd")
			n.send("STATUS=recording")
		case !ok && healthy:
			n.log().Error("watchdog: not pinging systemd, which will restart lablog", "reason", why)
			n.send("STATUS=" + why)
		}
		healthy = ok
		if ok {
			n.send(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
