// Package wire maps a loaded configuration (package config, the YAML
// schema) to the options of every component. It is the one place that
// knows both sides: domain packages own their Options and defaults and
// never import config, and config knows nothing of how its keys are used.
// A new key is read here (see docs/config-keys.md).
//
// It lives under internal/ rather than in cmd/lablog so that the
// recorder's end-to-end tests build their pipeline through the same
// mapping the daemon uses.
package wire

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/ops/service"
	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/publish/retention"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/privacy"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/record/source"
)

// Buffer is the bbolt buffer's options; the file is cfg.Buffer.Path.
func Buffer(cfg config.Config, log *slog.Logger) buffer.Options {
	return buffer.Options{MaxSize: int64(cfg.Buffer.MaxSize), Logger: log}
}

// OpenBuffer opens the configured buffer, as the daemon, lablog compact and
// the demo do.
func OpenBuffer(cfg config.Config, log *slog.Logger) (*buffer.DB, error) {
	return buffer.Open(cfg.Buffer.Path, Buffer(cfg, log))
}

// FaultsPath is the record of faults: fault.FileName in the buffer's
// folder (on the SD card with the buffer: a fault about the buffer must
// outlive it, and the archive drive may be missing).
func FaultsPath(cfg config.Config) string {
	return filepath.Join(filepath.Dir(cfg.Buffer.Path), fault.FileName)
}

// OpenFaults opens the configured record of faults.
func OpenFaults(cfg config.Config, log *slog.Logger) *fault.Store {
	return fault.Open(FaultsPath(cfg), fault.Options{Logger: log})
}

// Compactor is the compactor's options; what it must not keep quiet goes
// to faults (which may be nil). The users on the tombstone list (lablog
// subject erase) are filtered out of what it archives; the list is read
// once, here: erasing needs the daemon stopped.
func Compactor(cfg config.Config, log *slog.Logger, faults *fault.Store) compactor.Options {
	return compactor.Options{
		Filter:       TombstoneFilter(cfg, log),
		Fault:        faults.Report,
		Root:         cfg.Archive.Path,
		Require:      string(cfg.Archive.Require),
		RowGroupRows: cfg.Archive.RowGroupRows,
		Interval:     cfg.Compaction.Interval,
		Grace:        cfg.Compaction.Grace,
		Retry:        cfg.Compaction.Retry,
		OpenHours:    cfg.Compaction.OpenHours,
		Logger:       log,
	}
}

// Upload is the uploader's (and the bucket client's) options.
func Upload(cfg config.Config) upload.Options {
	u := cfg.Upload
	return upload.Options{
		Root: cfg.Archive.Path, Require: string(cfg.Archive.Require),
		Endpoint: u.Endpoint, Region: u.Region, Bucket: u.Bucket, Prefix: u.Prefix, Site: u.Site, PathStyle: u.PathStyle,
		Concurrency: u.Concurrency, BandwidthLimit: int64(u.BandwidthLimit),
		DeleteAfterUpload: u.DeleteAfterUpload, KeepDays: u.KeepDays, WaitForClock: u.WaitForClock,
		Interval: u.Interval, MinBackoff: u.MinBackoff, MaxBackoff: u.MaxBackoff, Timeout: u.Timeout,
	}
}

// Recorder is the whole pipeline's options: buffer, sources, relay hosts'
// rules, compactor, analytics and upload.
func Recorder(cfg config.Config, log *slog.Logger) recorder.Options {
	o := recorder.Options{
		BufferPath:      cfg.Buffer.Path,
		Buffer:          Buffer(cfg, log),
		Queue:           cfg.Buffer.Queue,
		CommitInterval:  cfg.Buffer.CommitInterval,
		FaultsPath:      FaultsPath(cfg),
		Compactor:       Compactor(cfg, log, nil),
		AnalyticsExport: cfg.Analytics.Export,
		NoAnalytics:     !cfg.Analytics.Live,
		Retention:       Retention(cfg),
		RelayHosts:      RelayHosts(cfg),
		Logger:          log,
	}
	shared := probes{}
	for _, s := range cfg.Streams() {
		o.Sources = append(o.Sources, sourceConfig(cfg, s, shared))
	}
	if cfg.Upload.Enabled() {
		u := Upload(cfg)
		u.ClockSynced = source.ClockSynced
		u.Check = TombstoneCheck(cfg, log)
		o.Upload = &recorder.UploadOptions{Options: u, CredentialsFile: cfg.Upload.CredentialsFile}
	}
	return o
}

// RelayHosts are the relay hosts whose rules lablog keeps: every host with
// streams that have tokens, once.
func RelayHosts(cfg config.Config) []recorder.RelayHost {
	byHost := map[string]int{}
	var out []recorder.RelayHost
	for _, s := range cfg.Streams() {
		if s.Kind != config.KindRelayHost || !s.HasToken() {
			continue
		}
		i, ok := byHost[s.RelayHost]
		if !ok {
			i = len(out)
			byHost[s.RelayHost] = i
			out = append(out, recorder.RelayHost{URL: s.RelayHost, Interval: cfg.Sources.RulesInterval})
		}
		out[i].Streams = append(out[i].Streams, Credentials(s))
	}
	return out
}

// ServiceUnit is the systemd unit of the binary exec run with the
// configuration cfg loaded from cfgPath.
func ServiceUnit(exec, cfgPath string, cfg config.Config) service.Unit {
	return service.Unit{
		Exec:       exec,
		Config:     cfgPath,
		BufferDir:  filepath.Dir(cfg.Buffer.Path),
		ArchiveDir: cfg.Archive.Path,
		LEDDir:     cfg.LED.Path,
	}
}

// sourceConfig is the websocket client of stream s. A relay stream resolves
// a one-time URI before each dial; a relay_host stream with a token dials
// the host but watches its token.
func sourceConfig(cfg config.Config, s config.Stream, probes probes) source.Config {
	sc := source.Config{
		Stream:       s.Name,
		URL:          s.URL,
		ReadLimit:    int64(cfg.Sources.ReadLimit),
		PingInterval: cfg.Sources.PingInterval,
		ReadTimeout:  cfg.Sources.ReadTimeout,
		MinBackoff:   cfg.Sources.MinBackoff,
		MaxBackoff:   cfg.Sources.MaxBackoff,
		TokenWarning: cfg.Sources.TokenWarning,
		// A stopped stream looks at its token as often as a failing one
		// would dial, and at least every 10 s.
		BlockedRetry: min(cfg.Sources.MaxBackoff, 10*time.Second),
		Probe:        probes.of(s),
	}
	switch {
	case s.Kind == config.KindRelay:
		sc.Prepare = relay.Direct(Credentials(s), nil, nil)
	case s.Kind == config.KindRelayHost && s.HasToken():
		sc.Prepare = relay.Watch(Credentials(s), nil)
	}
	return sc
}

// Credentials says where stream s's access URL and token come from.
func Credentials(s config.Stream) relay.Credentials {
	c := relay.Credentials{Stream: s.Name, Token: s.Token, Access: s.Access}
	if s.Kind == config.KindRelay {
		c.Access = relay.AccessURL(s.Relay, relay.LogTopic(s.Name))
	}
	if s.TokensDir != "" {
		c.TokenFile = relay.TokenFile(s.TokensDir, s.Name)
		c.AccessFile = relay.AccessFile(s.TokensDir, s.Name)
	}
	return c
}

// probes shares one source.Probe among the streams of each endpoint, so a
// relay that is down gets one request per probe interval however many
// streams wait on it.
type probes map[string]*source.Probe

// of is stream s's probe: a GET of the relay's access base, of the relay
// host's health check, or of the stream's own URL over http(s). Nil when
// no URL can be made (the stream then keeps its plain backoff).
func (ps probes) of(s config.Stream) *source.Probe {
	var target string
	switch s.Kind {
	case config.KindRelay:
		target = s.Relay
	case config.KindRelayHost:
		target = strings.TrimRight(httpURL(s.RelayHost), "/") + "/healthcheck"
	default:
		target = httpURL(s.URL)
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil
	}
	key := u.Scheme + "://" + u.Host
	if s.Kind != config.KindURL {
		key = target
	}
	if p, ok := ps[key]; ok {
		return p
	}
	p := source.NewProbe(target)
	ps[key] = p
	return p
}

// httpURL is a ws(s) URL's http(s) twin.
func httpURL(ws string) string {
	switch {
	case strings.HasPrefix(ws, "ws://"):
		return "http://" + strings.TrimPrefix(ws, "ws://")
	case strings.HasPrefix(ws, "wss://"):
		return "https://" + strings.TrimPrefix(ws, "wss://")
	}
	return ws
}

// OpenPseudonymiser loads (or, the first time, makes) the key of
// cfg.Privacy when pseudonymising is on; nil when it is off. The key is
// named in the log by its id only, so a changed key is noticed.
func OpenPseudonymiser(cfg config.Config, log *slog.Logger) (*privacy.Pseudonymiser, error) {
	p := cfg.Privacy
	if !p.Pseudonymise {
		return nil, nil
	}
	key, created, err := privacy.LoadKey(p.KeyFile, true)
	if err != nil {
		return nil, err
	}
	ps := privacy.New(key)
	if created {
		log.Warn("privacy: made a new pseudonymisation key: back it up, a new key gives every student a new pseudonym",
			"key_file", p.KeyFile, "key_id", ps.KeyID())
	}
	log.Info("privacy: user ids are pseudonymised at ingest", "key_id", ps.KeyID())
	if cfg.AddLog.Forward.Enabled() {
		log.Warn("privacy: statements are forwarded with pseudonyms, not user names: the upstream needs the same key to answer by user name",
			"upstream", cfg.AddLog.Forward.URL)
	}
	return ps, nil
}

// Retention is the sweeper of archive.keep_days, nil when it is 0. With
// upload on, a file goes only once the upload ledger has it.
func Retention(cfg config.Config) *retention.Options {
	if cfg.Archive.KeepDays <= 0 {
		return nil
	}
	o := retention.Options{Root: cfg.Archive.Path, Require: string(cfg.Archive.Require), KeepDays: cfg.Archive.KeepDays}
	if cfg.Upload.Enabled() {
		o.Uploaded = upload.Uploaded(Upload(cfg))
		o.HeldRetry = cfg.Upload.Interval
	}
	return &o
}

// OpenRecorder opens the pipeline of cfg, as lablog run and demo do: with
// the pseudonymiser of its privacy section (whose key it may make) and
// the parts extras makes from the assembled pipeline (recorder.Options.Extras).
func OpenRecorder(cfg config.Config, log *slog.Logger, extras func(*recorder.Recorder) (recorder.Extras, error)) (*recorder.Recorder, error) {
	o := Recorder(cfg, log)
	ps, err := OpenPseudonymiser(cfg, log)
	if err != nil {
		return nil, err
	}
	o.Pseudonymiser = ps
	o.Extras = extras
	return recorder.Open(o)
}

// NewUploader is the uploader of cfg's upload section, outside a running
// recorder (lablog subject erase); conflicts go to faults (may be nil).
func NewUploader(cfg config.Config, log *slog.Logger, faults *fault.Store) *upload.Uploader {
	o := Upload(cfg)
	o.Logger, o.Fault, o.ClockSynced = log, faults.Report, source.ClockSynced
	o.Check = TombstoneCheck(cfg, log)
	return upload.NewFromFile(o, cfg.Upload.CredentialsFile)
}

// TombstoneFilter is the compactor filter that drops the rows of the users
// on the tombstone list beside the buffer; nil when the list is empty. An
// unreadable list is logged and drops nothing (records are never lost for
// it); the erasure that wrote it checks it again.
func TombstoneFilter(cfg config.Config, log *slog.Logger) func(uint64, frame.Record) (frame.Record, bool) {
	path := subject.TombstonePath(cfg.Buffer.Path)
	t, err := subject.LoadTombstones(path)
	if err != nil {
		log.Error("TOMBSTONE LIST UNREADABLE: erased users are not filtered from new archive files", "file", path, "err", err)
		return nil
	}
	m := t.Matcher()
	if m == nil {
		return nil
	}
	return func(seq uint64, r frame.Record) (frame.Record, bool) {
		out, keep, _ := subject.Filter(seq, r, m)
		return out, keep
	}
}

// TombstoneCheck is the uploader's check that holds back files with rows
// of users on the tombstone list; nil when the list is empty.
func TombstoneCheck(cfg config.Config, log *slog.Logger) func(string) error {
	t, err := subject.LoadTombstones(subject.TombstonePath(cfg.Buffer.Path))
	if err != nil {
		// Held back rather than sent unchecked: nothing is lost by waiting.
		log.Error("TOMBSTONE LIST UNREADABLE: no file is uploaded until it is fixed", "err", err)
		return func(string) error { return fmt.Errorf("the tombstone list cannot be read: %w", err) }
	}
	if len(t) == 0 {
		return nil
	}
	return t.Check
}
