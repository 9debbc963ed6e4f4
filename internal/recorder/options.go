package recorder

// Every mapping from the configuration to a component's options is here, so
// that a new setting is wired in one place.

import (
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/compactor"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/fault"
	"github.com/practable/lablog/internal/frame"
	"github.com/practable/lablog/internal/privacy"
	"github.com/practable/lablog/internal/relay"
	"github.com/practable/lablog/internal/retention"
	"github.com/practable/lablog/internal/source"
	"github.com/practable/lablog/internal/subject"
	"github.com/practable/lablog/internal/upload"
)

// OpenBuffer opens the configured buffer, as the daemon, lablog compact and
// the demo do.
func OpenBuffer(cfg config.Config, log *slog.Logger) (*buffer.DB, error) {
	return buffer.Open(cfg.Buffer.Path, buffer.Options{MaxSize: int64(cfg.Buffer.MaxSize), Logger: log})
}

// NewUploader makes the uploader of cfg's upload section; conflicts go to
// faults (which may be nil). A credentials file that cannot be used does
// not stop recording: the uploader says so and reads it again.
func NewUploader(cfg config.Config, log *slog.Logger, faults *fault.Store) *upload.Uploader {
	opts := upload.OptionsFrom(cfg)
	opts.Logger = log
	opts.Fault = faults.Report
	opts.ClockSynced = source.ClockSynced
	opts.Check = TombstoneCheck(cfg, log)
	return upload.NewFromFile(opts, cfg.Upload.CredentialsFile)
}

// OpenFaults opens the record of faults, fault.FileName in the buffer's
// folder (on the SD card with the buffer: a fault about the buffer must
// outlive it, and the archive drive may be missing).
func OpenFaults(cfg config.Config, log *slog.Logger) *fault.Store {
	return fault.Open(filepath.Join(filepath.Dir(cfg.Buffer.Path), fault.FileName), fault.Options{Logger: log})
}

// CompactorOptions derives the compactor's options from the configuration;
// what it must not keep quiet goes to faults (which may be nil). The users
// on the tombstone list (lablog subject erase) are filtered out of what it
// archives; the list is read once, here: erasing needs the daemon stopped.
func CompactorOptions(cfg config.Config, log *slog.Logger, faults *fault.Store) compactor.Options {
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

// NewRetention is the sweeper of archive.keep_days, nil when it is 0. With
// upload on, a file goes only once the upload ledger has it.
func NewRetention(cfg config.Config, log *slog.Logger) *retention.Sweeper {
	if cfg.Archive.KeepDays <= 0 {
		return nil
	}
	o := retention.Options{Root: cfg.Archive.Path, Require: string(cfg.Archive.Require),
		KeepDays: cfg.Archive.KeepDays, Logger: log}
	if cfg.Upload.Enabled() {
		o.Uploaded = upload.Uploaded(upload.OptionsFrom(cfg))
		o.HeldRetry = cfg.Upload.Interval
	}
	return retention.New(o)
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
