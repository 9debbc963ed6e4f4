package wire

import (
	"fmt"
	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/analytics/dashboard"
	"log/slog"

	"github.com/practable/lablog/internal/cloud/forward"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/platform/httpserve"
	"github.com/practable/lablog/internal/publish/salvage"
	"github.com/practable/lablog/internal/record/addlog"
	"github.com/practable/lablog/internal/record/source"
)

// Monitor is the status monitor's options: base (what is not configured:
// version, tests' periods, the /addLog counts) with the configured fields
// set.
func Monitor(cfg config.Config, log *slog.Logger, base status.Options) status.Options {
	o := base
	o.ArchiveRoot = cfg.Archive.Path
	o.Require = string(cfg.Archive.Require)
	o.BufferMax = int64(cfg.Buffer.MaxSize)
	// Token expiry comes with each source's Stats; warn when the sources do.
	o.TokenWarn = cfg.Sources.TokenWarning
	o.Logger = log
	return o
}

// AddLog is the /addLog handler's options, but for what the running
// pipeline supplies: Credentials (read from cfg.AddLog.CredentialsFile)
// and Enqueue.
func AddLog(cfg config.Config, log *slog.Logger) addlog.Options {
	a := cfg.AddLog
	return addlog.Options{
		AllowedOrigins:    a.AllowedOrigins,
		MaxBody:           int64(a.MaxBody),
		KeepClientAddress: a.KeepClientAddress,
		TrustedProxies:    a.Proxies(),
		ClockSynced:       source.ClockSynced,
		Logger:            log,
	}
}

// AddLogServer is the /addLog listener's address and options; it reads the
// TLS certificate when one is configured.
func AddLogServer(cfg config.Config, log *slog.Logger) (string, httpserve.Options, error) {
	a := cfg.AddLog
	o := httpserve.Options{Hosts: a.Hosts, Proxies: a.Proxies(), Logger: log}
	if a.TLS.CertFile != "" {
		tlsCfg, err := httpserve.CertFiles(a.TLS.CertFile, a.TLS.KeyFile)
		if err != nil {
			return "", o, fmt.Errorf("addlog: %w", err)
		}
		o.TLS = tlsCfg
	}
	return a.Listen, o, nil
}

// Forward is the store and forward's options, but for what the caller
// supplies: the credentials (from cfg.AddLog.Forward.CredentialsFile) and
// the open buffer.
func Forward(cfg config.Config, log *slog.Logger) forward.Options {
	fc := cfg.AddLog.Forward
	return forward.Options{
		URL:         fc.URL,
		ArchiveRoot: cfg.Archive.Path, ArchiveRequire: string(cfg.Archive.Require),
		Prefix:     addlog.StreamPrefix,
		MinBackoff: fc.MinBackoff, MaxBackoff: fc.MaxBackoff,
		Logger: log,
	}
}

// Salvage is the options for salvaging a quarantined buffer into the
// configured archive.
func Salvage(cfg config.Config, log *slog.Logger) salvage.Options {
	return salvage.Options{RowGroupRows: cfg.Archive.RowGroupRows, Logger: log, Filter: TombstoneFilter(cfg, log)}
}

// Dashboards is the dashboards' API's options, but for the store and the
// credential check the caller supplies; it reads the comparison graphs and
// the course configs.
func Dashboards(cfg config.Config, log *slog.Logger) (dashboard.Options, error) {
	a, d := cfg.Analytics, cfg.AddLog.Dashboards
	comparisons, err := analytics.LoadComparisons(a.ComparisonDir)
	if err != nil {
		return dashboard.Options{}, fmt.Errorf("analytics.comparison_dir: %w", err)
	}
	courses, err := dashboard.LoadCourses(a.CoursesDir)
	if err != nil {
		return dashboard.Options{}, fmt.Errorf("analytics.courses_dir: %w", err)
	}
	return dashboard.Options{Comparisons: comparisons, TaskGraphs: a.TaskGraphs, Courses: courses,
		Location: a.Location(), AllowedOrigins: d.Origins(cfg.AddLog.AllowedOrigins), Logger: log}, nil
}
