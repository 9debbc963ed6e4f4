package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/led"
	"github.com/practable/lablog/internal/ops/sdnotify"
	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/platform/httpserve"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/supervise"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/record/stall"
)

// opsOptions say which of the operations around a recorder to start.
type opsOptions struct {
	Listen  string   // status server address; "" for none
	Hosts   []string // names the status page may be opened by (httpserve.Options.Hosts)
	LEDPath string   // sysfs LED folder; "" for none
	Notify  bool     // tell systemd READY, then ping its watchdog
	// MonitorOptions tunes the status monitor (tests shorten its periods).
	Monitor status.Options
}

// ops is what lets people and systemd see a recorder: the status monitor
// and its HTTP server, the LED and the systemd watchdog. None of them can
// stop the recording: each failure is logged and the recorder goes on.
// newOps makes them; assembly.Run runs them (supervise) around the
// recorder.
type ops struct {
	Monitor *status.Monitor
	URL     string // of the status page, "" when not serving
	runners []supervise.Runner
	hooks   recorder.Hooks // feed the metrics: the recorder calls them
}

// newOps makes the operations side of rec and the hooks that feed its
// metrics (recorder.Extras). The status server listens from here on;
// nothing runs until assembly.Run.
func newOps(rec *recorder.Recorder, cfg config.Config, log *slog.Logger, o opsOptions) (*ops, error) {
	mo := wire.Monitor(cfg, log, o.Monitor)
	mo.Version = versionString()
	mon := status.New(recorderPipeline{rec}, mo)
	x := &ops{Monitor: mon, runners: []supervise.Runner{mon},
		hooks: recorder.Hooks{OnCommit: mon.ObserveCommit, OnCompaction: mon.ObserveCompaction}}
	if o.Listen != "" {
		srv, err := httpserve.New(o.Listen, mon.Handler(), httpserve.Options{Hosts: o.Hosts, Logger: log})
		if err != nil {
			log.Error("status page unavailable; recording goes on without it", "listen", o.Listen, logkey.Err, fmt.Errorf("status: %w", err))
		} else {
			x.URL = srv.URL()
			log.Info("status page", logkey.URL, x.URL)
			x.runners = append(x.runners, srv)
		}
	}
	if o.LEDPath != "" {
		l := led.Open(o.LEDPath, led.Options{Logger: log})
		x.runners = append(x.runners, supervise.Func(func(ctx context.Context) error {
			led.Run(ctx, l, func() led.State { return status.LEDState(mon.Snapshot()) }, time.Second)
			return nil
		}))
	}
	if o.Notify {
		// READY first: systemd must not see a ping before it.
		n := sdnotify.Notifier{Logger: log}
		n.Ready()
		if timeout := sdnotify.Interval(); timeout > 0 {
			// Stalled well within one WatchdogSec (20s of the unit's 30s),
			// so a stuck writer ends in a restart rather than a long wait.
			det := &stall.Detector{After: min(stall.DefaultAfter, timeout*2/3)}
			check := func(now time.Time) (bool, string) {
				stalled, why := det.Observe(now, rec.Writer().Stats())
				return !stalled, why
			}
			x.runners = append(x.runners, supervise.Func(func(ctx context.Context) error {
				n.Watchdog(ctx, timeout, check)
				return nil
			}))
		}
	}
	return x, nil
}

// discard releases what newOps made when the recorder will not run: it
// starts and at once stops every part, which closes the status server's
// listener and gives the LED back its trigger.
func (x *ops) discard(log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = supervise.Run(ctx, log, supervise.Stage{Name: "ops", Runners: x.runners})
}
