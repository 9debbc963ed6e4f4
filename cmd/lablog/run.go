package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/practable/lablog/internal/analytics/dashboard"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/sdnotify"
	"github.com/practable/lablog/internal/platform/supervise"
	"github.com/practable/lablog/internal/record/addlog"
	"github.com/practable/lablog/internal/record/recorder"
)

// defaultConfig is where the service's configuration lives.
const defaultConfig = "/etc/lablog/lablog.yaml"

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "[--config FILE] [--debug]",
		"Record the configured streams until SIGTERM or SIGINT (the daemon; the service runs this).\nSIGUSR1 compacts now.")
	debug := fs.Bool("debug", false, "log at debug level (every connection attempt, commit and rule check)")
	cfg, path, stopProfile, err := parseProfiled(fs, args, stdout, stderr)
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := cfg.NotReady(path); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := newLogger(stderr, level)
	a, err := assemble(cfg, log, opsOptions{Listen: cfg.Status.Listen, Hosts: cfg.Status.Hosts, LEDPath: cfg.LED.Path, Notify: true})
	if err != nil {
		return err
	}
	rec := a.rec
	// newOps told systemd READY (the buffer is open); say STOPPING as soon
	// as shutdown begins, before the queue is drained.
	stopping := context.AfterFunc(ctx, sdnotify.Notifier{Logger: log}.Stopping)
	defer stopping()
	// SIGUSR1 asks for a compaction now (`systemctl kill -s USR1 lablog`).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			log.Info("compaction requested by SIGUSR1")
			rec.Compactor().Trigger()
		}
	}()
	log.Info("lablog recording", "version", versionString(), "streams", len(cfg.Streams()),
		"buffer", cfg.Buffer.Path, "archive", cfg.Archive.Path)
	return a.Run(ctx)
}

// assembly is one assembled lablog: the recorder and its operations side
// (status page, LED, watchdog), as run and demo start it.
type assembly struct {
	rec       *recorder.Recorder
	ops       *ops
	addLogURL string // "" when the /addLog listener is off
	log       *slog.Logger
}

// Run runs the operations side and the recorder until ctx ends; then it
// stops the recorder first (which commits what is queued and closes the
// buffer), and the operations side after it, so the status page and the
// watchdog watch the shutdown. It returns the recorder's error.
func (a *assembly) Run(ctx context.Context) error {
	var recErr error
	rec := supervise.Func(func(ctx context.Context) error {
		recErr = a.rec.Run(ctx)
		return nil
	})
	// The operations side logs its own failures; none stops the recording.
	_ = supervise.Run(ctx, a.log,
		supervise.Stage{Name: "ops", Runners: a.ops.runners},
		supervise.Stage{Name: "recorder", Runners: []supervise.Runner{rec}})
	return recErr
}

// assemble opens the recorder and makes its operations side; the caller
// runs them with a.Run.
func assemble(cfg config.Config, log *slog.Logger, o opsOptions) (*assembly, error) {
	a := &assembly{log: log}
	rec, err := wire.OpenRecorder(cfg, log, func(rec *recorder.Recorder) (recorder.Extras, error) {
		return a.extras(cfg, rec, o)
	})
	if err != nil {
		return nil, err
	}
	a.rec = rec
	return a, nil
}

// extras makes what needs the assembled recorder rec: the /addLog door
// and its store and forward, which rec runs, and the operations side,
// whose hooks observe rec.
func (a *assembly) extras(cfg config.Config, rec *recorder.Recorder, o opsOptions) (recorder.Extras, error) {
	var x recorder.Extras
	log := a.log
	if r := rec.Retention(); r != nil {
		o.Monitor.Retention = r.Stats
	}
	if p := rec.Pseudonymiser(); p != nil {
		o.Monitor.PseudonymKeyID = p.KeyID()
	}
	var al *addlog.Handler
	var dash *dashboard.Handler
	var err error
	if cfg.AddLog.Enabled() {
		if al, err = newAddLog(cfg, rec, log); err != nil {
			return x, err
		}
		if cfg.AddLog.Dashboards.Serve {
			if dash, err = newDashboards(cfg, rec, log); err != nil {
				return x, err
			}
		}
		o.Monitor.AddLog = al.Stats
		if cfg.AddLog.Forward.Enabled() {
			fw, err := newForwarder(cfg, rec, log)
			if err != nil {
				return x, err
			}
			x.Followers = append(x.Followers, fw)
			o.Monitor.AddLog = func() addlog.Stats {
				st, fs := al.Stats(), fw.Stats()
				st.Forward = &fs
				return st
			}
		}
	}
	if a.ops, err = newOps(rec, cfg, log, o); err != nil {
		return x, err
	}
	x.Hooks = append(x.Hooks, a.ops.hooks)
	if al != nil {
		srv, err := serveAddLog(cfg, al, dash, a.ops.Monitor.Healthz(), log)
		if err != nil {
			a.ops.discard(log)
			return x, err
		}
		a.addLogURL = srv.URL()
		x.Ingress = append(x.Ingress, srv)
	}
	return x, nil
}
