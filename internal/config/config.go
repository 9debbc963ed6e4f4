// Package config reads lablog.yaml: the file format, its defaults and its
// validation. It does no I/O beyond reading the file in Load.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/platform/secretfile"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/source"
)

// Config is a whole lablog.yaml. Keys left out of the file keep the values
// from Default.
type Config struct {
	Buffer     Buffer     `yaml:"buffer"`
	Archive    Archive    `yaml:"archive"`
	Compaction Compaction `yaml:"compaction"`
	Analytics  Analytics  `yaml:"analytics"`
	Sources    Sources    `yaml:"sources"`
	Status     Status     `yaml:"status"`
	LED        LED        `yaml:"led"`
	Upload     Upload     `yaml:"upload"`
	AddLog     AddLog     `yaml:"addlog"`
	Privacy    Privacy    `yaml:"privacy"`
	// StreamSpecs are the entries of the streams list as written; Streams
	// expands them. (The field cannot share the method's name.)
	StreamSpecs []StreamSpec `yaml:"streams"`
	// Example marks the example file (the packaged /etc/lablog/lablog.yaml)
	// until an admin makes it theirs and deletes the line: see NotReady.
	Example bool `yaml:"example"`
}

// NotReady says why the config at path must not be run yet (nil when it
// may): it is still the example, whose streams are placeholders. lablog run
// refuses it, and the service's unit stays idle (lablog config ready).
func (c Config) NotReady(path string) error {
	if !c.Example {
		return nil
	}
	return fmt.Errorf("%s is still the example configuration (example: true): put your streams in, delete the line example: true, check it (lablog config check %s), then start lablog", path, path)
}

// Buffer configures the bbolt buffer on the SD card.
type Buffer struct {
	// Path of the bbolt file. A relative path is resolved against the
	// directory of the config file by Load (Parse leaves it as written).
	Path string `yaml:"path"`
	// MaxSize is bbolt's Options.MaxSize: without it bbolt panics past
	// 2 GiB on 32-bit ARM.
	MaxSize Size `yaml:"max_size"`
	// Queue is how many frames may wait between the sources and the writer.
	Queue int `yaml:"queue"`
	// CommitInterval is the least time between the starts of two commits:
	// a frame after a quiet spell is committed at once, frames arriving
	// faster wait for the next commit together, which bounds the fsyncs
	// (and the wear of an SD card) whatever the traffic. 0 commits at once.
	CommitInterval time.Duration `yaml:"commit_interval"`
}

// Require says how the compactor decides that the archive drive is mounted,
// so that it never fills the SD card's mount point by mistake.
type Require string

// The modes are the archive package's (it owns the layout and the marker).
const (
	// RequireMarker needs the file archive.MarkerFile in the archive path.
	RequireMarker Require = archive.RequireMarker
	// RequireMountpoint needs the archive path to be a mount point.
	RequireMountpoint Require = archive.RequireMountpoint
	// RequireNone writes wherever the path is.
	RequireNone Require = archive.RequireNone
)

// Archive configures the Parquet archive on the USB drive.
type Archive struct {
	// Path of the archive root. A relative path is resolved against the
	// directory of the config file by Load (Parse leaves it as written).
	Path         string  `yaml:"path"`
	Require      Require `yaml:"require"`
	RowGroupRows int     `yaml:"row_group_rows"`
	// KeepDays removes hourly files from the drive once their hour ended
	// more than this many days ago (internal/publish/retention); with upload on,
	// only once they are in the bucket. 0 keeps everything.
	KeepDays int `yaml:"keep_days"`
}

// Compaction schedules moves from the buffer to the archive.
type Compaction struct {
	// Grace is how long after the hour closes the run starts, so that
	// frames still in flight for that hour are committed first.
	Grace time.Duration `yaml:"grace"`
	// Retry is the wait before running again after a failed compaction.
	Retry    time.Duration `yaml:"retry"`
	Interval time.Duration `yaml:"interval"`
	// OpenHours also archives the current, still open hour at each run
	// (demo and tests).
	OpenHours bool `yaml:"open_hours"`
}

// Analytics configures the live learning-analytics store of lablog run.
type Analytics struct {
	// Live keeps the live store: the students' matrices exported to the
	// drive and the dashboards' API. Off, lablog records and archives
	// only (the analytics can still be rebuilt with lablog analytics).
	Live bool `yaml:"live"`
	// Export is how often the students' matrices that changed are written
	// to the archive drive (analytics/ in archive.path).
	Export time.Duration `yaml:"export"`
	// ComparisonDir holds the comparison graphs the dashboards' API
	// compares students with: the 2023 server's comparison_graphs/*.csv,
	// each named by its task code (or mapped in TaskGraphs). Empty: none.
	// A relative path is resolved against the config file's directory.
	ComparisonDir string `yaml:"comparison_dir"`
	// CoursesDir holds course config JSON files, as the dashboards load
	// them: each course's tasks per kind of hardware. Empty: none (a
	// course's tasks are then its comparison graphs, hardware-course-*).
	CoursesDir string `yaml:"courses_dir"`
	// TaskGraphs names the comparison graph (file name without .csv) of
	// a task code where the two differ, e.g. spinner-ed1-1-core:
	// spinner-engdes1-1-core.
	TaskGraphs map[string]string `yaml:"task_graphs"`
	// TimeZone (IANA name) of the session start times in /usageStats;
	// empty: the machine's.
	TimeZone string `yaml:"time_zone"`
}

// Location is the time zone of TimeZone (validated: it loads).
func (a Analytics) Location() *time.Location {
	if a.TimeZone == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(a.TimeZone)
	if err != nil {
		return time.Local
	}
	return loc
}

// Sources holds the websocket settings shared by every stream.
type Sources struct {
	ReadLimit    Size          `yaml:"read_limit"`
	PingInterval time.Duration `yaml:"ping_interval"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	MinBackoff   time.Duration `yaml:"min_backoff"`
	MaxBackoff   time.Duration `yaml:"max_backoff"`
	// TokensDir holds the relay streams' token files, as `lablog tokens`
	// and the old scripts write them: log.token.<stream> (and
	// log.access.<stream>). A relative path is resolved against the config
	// file's directory by Load. relay_host streams do not use it unless
	// they set their own tokens_dir.
	TokensDir string `yaml:"tokens_dir"`
	// TokenWarning is how long before a relay token expires lablog starts
	// warning about it.
	TokenWarning time.Duration `yaml:"token_warning"`
	// RulesInterval is how often lablog checks the rules it provisions on a
	// relay host, re-posting those a restart lost.
	RulesInterval time.Duration `yaml:"rules_interval"`
}

// Status configures the status page, its JSON API and /metrics.
type Status struct {
	// Listen is the HTTP address (host:port; ":80" is every interface).
	// Empty turns the status server off.
	Listen string `yaml:"listen"`
	// Hosts are the host names the page may be opened by, besides IP
	// addresses, localhost and this machine's name (NAME and NAME.local).
	// Any other name in a request's Host header is refused, so a page on
	// another site cannot read the status through DNS rebinding.
	Hosts []string `yaml:"hosts"`
}

// LED configures the board LED that shows lablog's health at a glance.
type LED struct {
	// Path is the LED's sysfs folder (it holds trigger and brightness).
	// Empty leaves every LED alone.
	Path string `yaml:"path"`
}

// StreamSpec is one entry of the streams list. Name is a stream name or,
// with RelayHost, a range: spin30-41 (or spin30-spin41) stands for
// spin30..spin41, padded to the width of the first number (pend00-03 gives
// pend00..pend03). A name whose last "-" has digits on both sides is always
// read as a range.
type StreamSpec struct {
	Name string `yaml:"name"`
	// URL is a plain ws or wss URL for this one stream.
	URL string `yaml:"url"`
	// RelayHost is a relay host's base URL (ws, wss, http or https); the
	// stream is read from <base>/ws/<name>. With a token (TokensDir or
	// Token) lablog also keeps the host's destination rule for the stream.
	RelayHost string `yaml:"relay_host"`
	// Relay is the relay's access base URL (http or https, e.g.
	// https://relay-access.practable.io): lablog joins topic <name>-log
	// itself, through the access protocol, with the stream's token.
	Relay string `yaml:"relay"`
	// TokensDir overrides sources.tokens_dir for this entry; on a
	// relay_host entry it turns rule provisioning on.
	TokensDir string `yaml:"tokens_dir"`
	// Token is the stream's relay token itself (one stream, not a range).
	Token string `yaml:"token"`
	// Access is the access URL of a relay_host stream's rule,
	// {relay}/session/{topic}, when it is not in a log.access.<name> file.
	Access string `yaml:"access"`
}

// Kind is how a stream is read.
type Kind string

// Kinds of stream.
const (
	KindURL       Kind = "url"        // a plain websocket URL
	KindRelayHost Kind = "relay_host" // a relay host's local websocket
	KindRelay     Kind = "relay"      // the relay itself, through the access protocol
)

// Stream is one stream to record, after ranges are expanded.
type Stream struct {
	Name string
	Kind Kind
	URL  string // the websocket URL to dial; empty for KindRelay
	// RelayHost is the host's base URL (KindRelayHost).
	RelayHost string
	// Relay is the relay's access base URL, no trailing slash (KindRelay).
	Relay string
	// Where the relay token comes from: Token itself, or the files of
	// TokensDir. Neither set: no token (a relay_host stream whose rules
	// someone else keeps). Access is a relay_host stream's access URL when
	// given inline.
	TokensDir string
	Token     string
	Access    string
}

// HasToken reports whether the stream uses a relay token.
func (s Stream) HasToken() bool { return s.Token != "" || s.TokensDir != "" }

// Default returns the values used for every key a file leaves out:
//
//	buffer.path              /var/lib/lablog/buffer.db
//	buffer.max_size          1GiB
//	buffer.queue             16384
//	buffer.commit_interval   100ms
//	archive.path             /media/lablog
//	archive.require          marker
//	archive.row_group_rows   50000
//	archive.keep_days        0 (keep forever)
//	compaction.grace         2m
//	compaction.retry         1m
//	compaction.interval      1h
//	compaction.open_hours    false
//	analytics.export         5m
//	sources.read_limit       1MiB
//	sources.ping_interval    20s
//	sources.read_timeout     60s
//	sources.min_backoff      1s
//	sources.max_backoff      60s
//	sources.tokens_dir       tokens (next to the config file)
//	sources.token_warning    720h (30 days)
//	sources.rules_interval   5s
//	status.listen            :80
//	led.path                 /sys/class/leds/ACT
//	upload.endpoint          "" (uploading off; see Upload for the rest)
//	upload.region            us-east-1
//	upload.credentials_file  upload-credentials (next to the config file)
//	upload.concurrency       2
//	upload.keep_days         30
//	upload.wait_for_clock    true
//	upload.interval          1m
//	upload.min_backoff       1s
//	upload.max_backoff       5m
//	upload.timeout           10m
//	privacy.pseudonymise     false
//	privacy.key_file         pseudonym-key (next to the config file)
//
// There is no default stream: a file must list at least one.
func Default() Config {
	return Config{
		Buffer: Buffer{
			Path:           "/var/lib/lablog/buffer.db",
			MaxSize:        buffer.DefaultMaxSize,
			Queue:          buffer.DefaultQueue,
			CommitInterval: buffer.DefaultCommitInterval,
		},
		Archive: Archive{
			Path:         "/media/lablog",
			Require:      RequireMarker,
			RowGroupRows: archive.DefaultRowGroupRows,
		},
		Compaction: Compaction{
			Grace:    compactor.DefaultGrace,
			Retry:    compactor.DefaultRetry,
			Interval: compactor.DefaultInterval,
		},
		Analytics: Analytics{Live: true, Export: analytics.DefaultExport, TaskGraphs: map[string]string{}},
		Sources: Sources{
			ReadLimit:     source.DefaultReadLimit,
			PingInterval:  source.DefaultPingInterval,
			ReadTimeout:   source.DefaultReadTimeout,
			MinBackoff:    source.DefaultMinBackoff,
			MaxBackoff:    source.DefaultMaxBackoff,
			TokensDir:     "tokens",
			TokenWarning:  source.DefaultTokenWarning,
			RulesInterval: relay.DefaultInterval,
		},
		Status:  Status{Listen: ":80", Hosts: []string{}},
		LED:     LED{Path: "/sys/class/leds/ACT"},
		Upload:  defaultUpload(),
		AddLog:  defaultAddLog(),
		Privacy: defaultPrivacy(),
	}
}

//go:embed example.yaml
var example []byte

// Example returns a commented lablog.yaml that documents every key with its
// default value.
func Example() []byte {
	return bytes.Clone(example)
}

// Load reads, parses and validates the config file at path; a file with an
// inline token must pass secretfile.CheckMode. Relative
// buffer.path, archive.path and tokens_dir are resolved against the file's
// directory, so a config folder can be moved as a whole.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return Config{}, err
	}
	if c.hasInlineToken() {
		if err := secretfile.CheckMode(path, fi); err != nil {
			return Config{}, fmt.Errorf("config holds a relay token: %w", err)
		}
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return Config{}, fmt.Errorf("config dir: %w", err)
	}
	c.Buffer.Path = resolve(dir, c.Buffer.Path)
	c.Archive.Path = resolve(dir, c.Archive.Path)
	if c.Sources.TokensDir != "" {
		c.Sources.TokensDir = resolve(dir, c.Sources.TokensDir)
	}
	paths := []*string{&c.Analytics.ComparisonDir, &c.Analytics.CoursesDir, &c.Privacy.KeyFile,
		&c.AddLog.CredentialsFile, &c.AddLog.TLS.CertFile, &c.AddLog.TLS.KeyFile, &c.AddLog.Forward.CredentialsFile}
	for _, p := range paths {
		if *p != "" {
			*p = resolve(dir, *p)
		}
	}
	if c.Upload.CredentialsFile != "" {
		c.Upload.CredentialsFile = resolve(dir, c.Upload.CredentialsFile)
	}
	for i := range c.StreamSpecs {
		if d := c.StreamSpecs[i].TokensDir; d != "" {
			c.StreamSpecs[i].TokensDir = resolve(dir, d)
		}
	}
	return c, nil
}

// hasInlineToken reports whether a stream's token is written in the file,
// which makes the file a secret.
func (c Config) hasInlineToken() bool {
	for _, s := range c.StreamSpecs {
		if s.Token != "" {
			return true
		}
	}
	return false
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// Parse decodes and validates one YAML document. name is used in error
// messages only. Relative paths are left as written (relative to the working
// directory). Problems in the file are returned as Errors, every one at once.
func Parse(data []byte, name string) (Config, error) {
	root, errs := document(data)
	if errs != nil {
		for i := range errs {
			errs[i] = syntaxLine(data, errs[i])
		}
		return Config{}, errs.in(name)
	}
	idx := indexKeys(root)

	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		errs = decodeErrors(err, idx)
	}
	// Fields that failed to decode keep their (valid) defaults, so the
	// other fields' problems can be reported in the same pass.
	if err := c.Validate(); err != nil {
		for _, e := range err.(Errors) {
			if !errs.about(e.Field) {
				e.Line = idx.line(e.Field)
				errs = append(errs, e)
			}
		}
	}
	if errs != nil {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return Config{}, errs.in(name)
	}
	return c, nil
}

// document returns the single YAML document in data, rejecting an empty file
// and a file of several documents (the decoder would silently read the first).
func document(data []byte) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || err == nil && len(doc.Content) == 1 && doc.Content[0].Tag == "!!null" {
		return nil, Errors{{Msg: "file is empty: it needs at least a streams list"}}
	}
	if err != nil {
		return nil, decodeErrors(err, keyIndex{})
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{Line: root.Line, Msg: "the top level must be a mapping of sections (buffer, archive, compaction, sources, streams)"}}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, Errors{{Line: next.Line, Msg: "more than one YAML document (---): the file must hold exactly one"}}
	}
	return root, nil
}
