package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/httpserve"
	"github.com/practable/lablog/internal/led"
	"github.com/practable/lablog/internal/recorder"
	"github.com/practable/lablog/internal/sdnotify"
	"github.com/practable/lablog/internal/stall"
	"github.com/practable/lablog/internal/status"
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

// ops runs what lets people and systemd see a recorder: the status monitor
// and its HTTP server, the LED and the systemd watchdog. None of them can
// stop the recording: each failure is logged and the recorder goes on.
type ops struct {
	Monitor *status.Monitor
	URL     string // of the status page, "" when not serving
	log     *slog.Logger
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// startOps must run after recorder.Open and before rec.Run: it registers
// the recorder hooks that feed the metrics.
func startOps(rec *recorder.Recorder, cfg config.Config, log *slog.Logger, o opsOptions) (*ops, error) {
	mo := wire.Monitor(cfg, log, o.Monitor)
	mo.Version = versionString()
	mon := status.New(recorderPipeline{rec}, mo)
	err := rec.AddHooks(recorder.Hooks{OnCommit: mon.ObserveCommit, OnCompaction: mon.ObserveCompaction})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &ops{Monitor: mon, log: log, ctx: ctx, stop: cancel}
	x.go_(func() { mon.Run(ctx) })

	if o.Listen != "" {
		if err := x.serve(o.Listen, o.Hosts); err != nil {
			log.Error("status page unavailable; recording goes on without it", "listen", o.Listen, "err", err)
		}
	}
	if o.LEDPath != "" {
		l := led.Open(o.LEDPath, log)
		x.go_(func() {
			led.Run(ctx, l, func() led.State { return status.LEDState(mon.Snapshot()) }, time.Second)
		})
	}
	if o.Notify {
		// READY first: systemd must not see a ping before it.
		n := sdnotify.Notifier{Log: log}
		n.Ready()
		if timeout := sdnotify.Interval(); timeout > 0 {
			// Stalled well within one WatchdogSec (20s of the unit's 30s),
			// so a stuck writer ends in a restart rather than a long wait.
			det := &stall.Detector{After: min(stall.DefaultAfter, timeout*2/3)}
			check := func(now time.Time) (bool, string) {
				stalled, why := det.Observe(now, rec.Writer().Stats())
				return !stalled, why
			}
			x.go_(func() { n.Watchdog(ctx, timeout, check) })
		}
	}
	return x, nil
}

func (x *ops) go_(f func()) {
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		f()
	}()
}

func (x *ops) serve(listen string, hosts []string) error {
	srv, err := httpserve.New(listen, x.Monitor.Handler(), httpserve.Options{Hosts: hosts, Logger: x.log})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	x.URL = srv.URL()
	x.log.Info("status page", "url", x.URL)
	x.go_(func() {
		if err := srv.Run(x.ctx); err != nil {
			x.log.Error("status server stopped", "err", err)
		}
	})
	return nil
}

// Stop ends the server (letting requests in flight finish), the LED
// (restoring its trigger) and the watchdog.
func (x *ops) Stop() {
	x.stop()
	x.wg.Wait()
}
