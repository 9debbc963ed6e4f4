package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/practable/lablog/internal/addlog"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/forward"
	"github.com/practable/lablog/internal/httpserve"
	"github.com/practable/lablog/internal/logkey"
	"github.com/practable/lablog/internal/recorder"
)

// newAddLog makes the /addLog handler of cfg in front of rec's writer.
func newAddLog(cfg config.Config, rec *recorder.Recorder, log *slog.Logger) (*addlog.Handler, error) {
	creds, err := addlog.LoadCredentials(cfg.AddLog.CredentialsFile)
	if err != nil {
		return nil, err
	}
	o := wire.AddLog(cfg, log)
	o.Credentials = creds
	o.Enqueue = rec.Writer().Enqueue
	return addlog.New(o), nil
}

// serveAddLog opens the /addLog listener (with /healthz beside it) and
// hands it to rec, which runs it with the sources; it returns its URL.
func serveAddLog(cfg config.Config, h *addlog.Handler, healthz http.Handler, rec *recorder.Recorder, log *slog.Logger) (string, error) {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.Handle("GET /healthz", healthz)
	listen, o, err := wire.AddLogServer(cfg, log)
	if err != nil {
		return "", err
	}
	srv, err := httpserve.New(listen, mux, o)
	if err != nil {
		return "", fmt.Errorf("addlog: %w", err)
	}
	if err := rec.AddIngress(srv); err != nil {
		return "", err
	}
	log.Info("addlog listening", logkey.URL, srv.URL())
	return srv.URL(), nil
}

// newForwarder makes the store and forward of cfg's statements and hands
// it to rec, which runs it beside the writer.
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
	if err := rec.AddFollower(fw); err != nil {
		return nil, err
	}
	log.Info("forwarding statements", "upstream", fw.Stats().URL)
	return fw, nil
}
