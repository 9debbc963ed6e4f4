package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/practable/lablog/internal/analytics/dashboard"
	"github.com/practable/lablog/internal/cloud/forward"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/platform/httpserve"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/record/addlog"
	"github.com/practable/lablog/internal/record/recorder"
)

// newAddLog makes the /addLog handler of cfg in front of rec's writer.
func newAddLog(cfg config.Config, rec *recorder.Recorder, log *slog.Logger) (*addlog.Handler, error) {
	creds, err := addlog.LoadCredentials(cfg.AddLog.CredentialsFile)
	if err != nil {
		return nil, err
	}
	o := wire.AddLog(cfg, log)
	o.Credentials = creds
	o.Enqueue = rec.Enqueue // through the pseudonymiser
	return addlog.New(o), nil
}

// newDashboards makes the dashboards' API of cfg over rec's analytics
// store.
func newDashboards(cfg config.Config, rec *recorder.Recorder, log *slog.Logger) (*dashboard.Handler, error) {
	o, err := wire.Dashboards(cfg, log)
	if err != nil {
		return nil, err
	}
	o.Store = rec.Analytics()
	if ps := rec.Pseudonymiser(); ps != nil {
		o.UserID = ps.ID // the store holds pseudonyms: ask for the one of the request's id
	}
	if cfg.AddLog.Dashboards.RequireCredential {
		creds, err := addlog.LoadCredentials(cfg.AddLog.CredentialsFile)
		if err != nil {
			return nil, err
		}
		o.Authorize = creds.Allow
	}
	log.Info("dashboards' API on", "comparison_graphs", len(o.Comparisons), "courses", len(o.Courses))
	return dashboard.New(o), nil
}

// serveAddLog opens the /addLog listener (with /healthz and, when dash is
// set, the dashboards' API beside it), for the recorder to run with the
// sources.
func serveAddLog(cfg config.Config, h *addlog.Handler, dash *dashboard.Handler, healthz http.Handler, log *slog.Logger) (*httpserve.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("GET /healthz", healthz)
	if dash != nil {
		for _, path := range dashboard.Paths {
			mux.Handle(path, dash)
		}
	}
	listen, o, err := wire.AddLogServer(cfg, log)
	if err != nil {
		return nil, err
	}
	srv, err := httpserve.New(listen, mux, o)
	if err != nil {
		return nil, fmt.Errorf("addlog: %w", err)
	}
	log.Info("addlog listening", logkey.URL, srv.URL())
	return srv, nil
}

// newForwarder makes the store and forward of cfg's statements from rec's
// buffer, for rec to run beside the writer.
func newForwarder(cfg config.Config, rec *recorder.Recorder, log *slog.Logger) (*forward.Forwarder, error) {
	user, password, err := forward.LoadCredentials(cfg.AddLog.Forward.CredentialsFile)
	if err != nil {
		return nil, err
	}
	o := wire.Forward(cfg, log)
	o.User, o.Password, o.Buffer = user, password, rec.Buffer()
	fw, err := forward.New(o)
	if err != nil {
		return nil, err
	}
	log.Info("forwarding statements", "upstream", fw.Stats().URL)
	return fw, nil
}
