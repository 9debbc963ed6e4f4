package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/practable/lablog/internal/addlog"
	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/dashboard"
	"github.com/practable/lablog/internal/forward"
	"github.com/practable/lablog/internal/httpserve"
	"github.com/practable/lablog/internal/recorder"
	"github.com/practable/lablog/internal/source"
)

// newAddLog makes the /addLog handler of cfg in front of rec's writer.
func newAddLog(cfg config.AddLog, rec *recorder.Recorder, log *slog.Logger) (*addlog.Handler, error) {
	creds, err := addlog.LoadCredentials(cfg.CredentialsFile)
	if err != nil {
		return nil, err
	}
	return addlog.New(addlog.Options{
		Credentials:       creds,
		AllowedOrigins:    cfg.AllowedOrigins,
		MaxBody:           int64(cfg.MaxBody),
		KeepClientAddress: cfg.KeepClientAddress,
		TrustedProxies:    cfg.Proxies(),
		Enqueue:           rec.Enqueue,
		ClockSynced:       source.ClockSynced,
		Logger:            log,
	}), nil
}

// newDashboards makes the dashboards' API of cfg over rec's analytics
// store.
func newDashboards(cfg config.Config, rec *recorder.Recorder, log *slog.Logger) (*dashboard.Handler, error) {
	a, d := cfg.Analytics, cfg.AddLog.Dashboards
	comparisons, err := analytics.LoadComparisons(a.ComparisonDir)
	if err != nil {
		return nil, fmt.Errorf("analytics.comparison_dir: %w", err)
	}
	courses, err := dashboard.LoadCourses(a.CoursesDir)
	if err != nil {
		return nil, fmt.Errorf("analytics.courses_dir: %w", err)
	}
	o := dashboard.Options{Store: rec.Analytics(), Comparisons: comparisons, TaskGraphs: a.TaskGraphs,
		Courses: courses, Location: a.Location(), AllowedOrigins: d.Origins(cfg.AddLog.AllowedOrigins), Logger: log}
	if ps := rec.Pseudonymiser(); ps != nil {
		o.UserID = ps.ID // the store holds pseudonyms: ask for the one of the request's id
	}
	if d.RequireCredential {
		creds, err := addlog.LoadCredentials(cfg.AddLog.CredentialsFile)
		if err != nil {
			return nil, err
		}
		o.Authorize = creds.Allow
	}
	log.Info("dashboards' API on", "comparison_graphs", len(comparisons), "courses", len(courses))
	return dashboard.New(o), nil
}

// serveAddLog opens the /addLog listener (with /healthz and, when dash is
// set, the dashboards' API beside it) and hands it to rec, which runs it
// with the sources; it returns its URL.
func serveAddLog(cfg config.AddLog, h *addlog.Handler, dash *dashboard.Handler, healthz http.Handler, rec *recorder.Recorder, log *slog.Logger) (string, error) {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("GET /healthz", healthz)
	if dash != nil {
		for _, path := range dashboard.Paths {
			mux.Handle(path, dash)
		}
	}
	o := httpserve.Options{Hosts: cfg.Hosts, Proxies: cfg.Proxies(), Logger: log}
	if cfg.TLS.CertFile != "" {
		tlsCfg, err := httpserve.CertFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return "", fmt.Errorf("addlog: %w", err)
		}
		o.TLS = tlsCfg
	}
	srv, err := httpserve.New(cfg.Listen, mux, o)
	if err != nil {
		return "", fmt.Errorf("addlog: %w", err)
	}
	if err := rec.AddIngress(srv); err != nil {
		return "", err
	}
	log.Info("addlog listening", "url", srv.URL())
	return srv.URL(), nil
}

// newForwarder makes the store and forward of cfg's statements and hands
// it to rec, which runs it beside the writer.
func newForwarder(cfg config.Config, rec *recorder.Recorder, log *slog.Logger) (*forward.Forwarder, error) {
	fc := cfg.AddLog.Forward
	user, password, err := forward.LoadCredentials(fc.CredentialsFile)
	if err != nil {
		return nil, err
	}
	fw, err := forward.New(forward.Options{
		URL: fc.URL, User: user, Password: password,
		Buffer:      rec.Buffer(),
		ArchiveRoot: cfg.Archive.Path, ArchiveRequire: string(cfg.Archive.Require),
		Prefix:     addlog.StreamPrefix,
		MinBackoff: fc.MinBackoff, MaxBackoff: fc.MaxBackoff,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if err := rec.AddFollower(fw); err != nil {
		return nil, err
	}
	log.Info("forwarding statements", "upstream", fw.Stats().URL)
	return fw, nil
}
