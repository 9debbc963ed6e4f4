package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const oneStream = "streams:\n  - name: spin30\n    relay_host: ws://h:8888\n"

func mustParse(t *testing.T, src string) Config {
	t.Helper()
	c, err := Parse([]byte(src), "lablog.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

// parseErr parses src, which must fail with Errors, and returns them printed.
func parseErr(t *testing.T, src string) string {
	t.Helper()
	_, err := Parse([]byte(src), "lablog.yaml")
	if err == nil {
		t.Fatalf("Parse(%q) succeeded, want an error", src)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error is %T, want Errors: %v", err, err)
	}
	return err.Error()
}

func TestDefaultsApplied(t *testing.T) {
	c := mustParse(t, oneStream)
	want := Default()
	want.StreamSpecs = []StreamSpec{{Name: "spin30", RelayHost: "ws://h:8888"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if err := Default().Validate(); err == nil || err.Error() != "streams: at least one stream is required (or an addlog listener)" {
		t.Errorf("Default().Validate() = %v, want only the missing streams", err)
	}
}

func TestPartialSectionKeepsOtherDefaults(t *testing.T) {
	c := mustParse(t, "buffer:\n  queue: 10\narchive:\ncompaction:\n  open_hours: true\n"+oneStream)
	d := Default()
	if c.Buffer.Queue != 10 || c.Buffer.Path != d.Buffer.Path || c.Buffer.MaxSize != d.Buffer.MaxSize {
		t.Errorf("buffer = %+v, want queue 10 and default path and max_size", c.Buffer)
	}
	if c.Archive != d.Archive {
		t.Errorf("empty archive section = %+v, want defaults %+v", c.Archive, d.Archive)
	}
	if !c.Compaction.OpenHours || c.Compaction.Grace != d.Compaction.Grace {
		t.Errorf("compaction = %+v, want open_hours and default grace", c.Compaction)
	}
}

func TestEveryKeyOverrides(t *testing.T) {
	c := mustParse(t, `
buffer: {path: /b.db, max_size: 2MiB, queue: 7, commit_interval: 0s}
archive: {path: /a, require: none, row_group_rows: 9, keep_days: 14}
compaction: {grace: 30s, retry: 5s, interval: 10m, open_hours: true}
analytics: {live: false, export: 90s, comparison_dir: /cmp, courses_dir: /courses, task_graphs: {spinner-ed1-1-core: spinner-engdes1-1-core},
  time_zone: Europe/London}
sources: {read_limit: 64KiB, ping_interval: 5s, read_timeout: 6s, min_backoff: 2s, max_backoff: 3s,
  tokens_dir: /t, token_warning: 48h, rules_interval: 2s}
status: {listen: "127.0.0.1:8080", hosts: [lablog.lab.example]}
led: {path: /sys/class/leds/led0}
upload: {endpoint: "https://s3.example.org", region: eu-west-2, bucket: lab-archive, prefix: lablog/v1, site: bristol,
  path_style: true, credentials_file: /etc/lablog/s3, concurrency: 4, bandwidth_limit: 1MiB,
  delete_after_upload: true, keep_days: 7, wait_for_clock: false, interval: 30s, min_backoff: 2s, max_backoff: 1m, timeout: 2m}
addlog: {listen: ":8081", hosts: [lablog.lab.example], credentials_file: /etc/lablog/addlog, allowed_origins: ["https://lab.example"],
  max_body: 8KiB, keep_client_address: true, trusted_proxies: [10.0.0.1], tls: {cert_file: /c.pem, key_file: /k.pem},
  forward: {url: "https://analytics.example/", credentials_file: /etc/lablog/fwd, min_backoff: 2s, max_backoff: 30s},
  dashboards: {serve: false, allowed_origins: ["https://dash.example"], require_credential: true}}
privacy: {pseudonymise: true, key_file: /etc/lablog/pk}
`+oneStream)
	want := Config{
		Buffer:     Buffer{Path: "/b.db", MaxSize: 2 * MiB, Queue: 7},
		Archive:    Archive{Path: "/a", Require: RequireNone, RowGroupRows: 9, KeepDays: 14},
		Compaction: Compaction{Grace: 30 * time.Second, Retry: 5 * time.Second, Interval: 10 * time.Minute, OpenHours: true},
		Analytics: Analytics{Export: 90 * time.Second, ComparisonDir: "/cmp", CoursesDir: "/courses",
			TaskGraphs: map[string]string{"spinner-ed1-1-core": "spinner-engdes1-1-core"}, TimeZone: "Europe/London"},
		Sources: Sources{ReadLimit: 64 * KiB, PingInterval: 5 * time.Second, ReadTimeout: 6 * time.Second, MinBackoff: 2 * time.Second, MaxBackoff: 3 * time.Second,
			TokensDir: "/t", TokenWarning: 48 * time.Hour, RulesInterval: 2 * time.Second},
		Status: Status{Listen: "127.0.0.1:8080", Hosts: []string{"lablog.lab.example"}},
		LED:    LED{Path: "/sys/class/leds/led0"},
		Upload: Upload{Endpoint: "https://s3.example.org", Region: "eu-west-2", Bucket: "lab-archive", Prefix: "lablog/v1",
			Site: "bristol", PathStyle: true, CredentialsFile: "/etc/lablog/s3", Concurrency: 4, BandwidthLimit: MiB,
			DeleteAfterUpload: true, KeepDays: 7, WaitForClock: false, Interval: 30 * time.Second,
			MinBackoff: 2 * time.Second, MaxBackoff: time.Minute, Timeout: 2 * time.Minute},
		AddLog: AddLog{Listen: ":8081", Hosts: []string{"lablog.lab.example"}, CredentialsFile: "/etc/lablog/addlog",
			AllowedOrigins: []string{"https://lab.example"}, MaxBody: 8 * KiB, KeepClientAddress: true,
			TrustedProxies: []string{"10.0.0.1"}, TLS: TLS{CertFile: "/c.pem", KeyFile: "/k.pem"},
			Forward:    Forward{URL: "https://analytics.example/", CredentialsFile: "/etc/lablog/fwd", MinBackoff: 2 * time.Second, MaxBackoff: 30 * time.Second},
			Dashboards: Dashboards{AllowedOrigins: []string{"https://dash.example"}, RequireCredential: true}},
		Privacy:     Privacy{Pseudonymise: true, KeyFile: "/etc/lablog/pk"},
		StreamSpecs: []StreamSpec{{Name: "spin30", RelayHost: "ws://h:8888"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestExampleParsesWithDefaults(t *testing.T) {
	c, err := Parse(Example(), "example.yaml")
	if err != nil {
		t.Fatalf("example does not parse:\n%v", err)
	}
	// The example claims to show every default: hold it to that.
	d := Default()
	d.StreamSpecs = c.StreamSpecs
	d.Example = true // the one key it sets otherwise: it marks itself
	if !reflect.DeepEqual(c, d) {
		t.Errorf("example settings differ from Default():\n got %+v\nwant %+v", c, d)
	}
	s := c.Streams()
	first := Stream{Name: "spin30", Kind: KindRelay, Relay: "https://relay-access.practable.io", TokensDir: "tokens"}
	host := Stream{Name: "pend00", Kind: KindRelayHost, URL: "ws://127.0.0.1:8888/ws/pend00", RelayHost: "ws://127.0.0.1:8888", TokensDir: "/etc/practable"}
	if len(s) != 18 || s[0] != first || s[12] != host || s[16].Token == "" || s[16].Access == "" ||
		s[17] != (Stream{Name: "cam0", Kind: KindURL, URL: "wss://example.org/path"}) {
		t.Errorf("example streams = %+v", s)
	}
}

func TestExampleDocumentsEveryKey(t *testing.T) {
	root, err := document(Example())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range indexKeys(root) {
		have[k.path] = true
	}
	var walk func(tt reflect.Type, path string)
	walk = func(tt reflect.Type, path string) {
		for i := range tt.NumField() {
			p := path + tt.Field(i).Tag.Get("yaml")
			ft := tt.Field(i).Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				// Every key of an entry is shown by at least one entry.
				et := ft.Elem()
				for j := range et.NumField() {
					k := et.Field(j).Tag.Get("yaml")
					found := false
					for e := 0; have[fmt.Sprintf("%s[%d]", p, e)]; e++ {
						found = found || have[fmt.Sprintf("%s[%d].%s", p, e, k)]
					}
					if !found {
						t.Errorf("no entry of the example's %s shows %s", p, k)
					}
				}
				continue
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, p+".")
				continue
			}
			if !have[p] {
				t.Errorf("example lacks key %s", p)
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestEmptyStatusAndLEDTurnThemOff(t *testing.T) {
	c := mustParse(t, "status:\n  listen: \"\"\nled:\n  path: \"\"\n"+oneStream)
	if c.Status.Listen != "" || c.LED.Path != "" {
		t.Errorf("status %+v, led %+v: want both empty (off)", c.Status, c.LED)
	}
}

func TestExampleReturnsCopy(t *testing.T) {
	Example()[0] = 'X'
	if Example()[0] == 'X' {
		t.Error("Example returns the embedded bytes, not a copy")
	}
}

func TestUnknownKeysKeepLine(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"bogus: 1\n" + oneStream,
			"lablog.yaml:1: bogus: unknown key (want one of: buffer, archive, compaction, analytics, sources, status, led, upload, addlog, privacy, streams, example)"},
		{"buffer:\n  path: /x\n  bogus: 3\n" + oneStream,
			"lablog.yaml:3: buffer.bogus: unknown key (want one of: path, max_size, queue, commit_interval)"},
		{"streams:\n  - name: spin30\n    relayhost: ws://h\n",
			"lablog.yaml:3: streams[0].relayhost: unknown key (want one of: name, url, relay_host, relay, tokens_dir, token, access)"},
		// Every unknown key is reported, not just the first.
		{"archive:\n  pth: /a\nsources:\n  ping: 1s\n" + oneStream,
			"lablog.yaml:2: archive.pth: unknown key (want one of: path, require, row_group_rows, keep_days)\n" +
				"lablog.yaml:4: sources.ping: unknown key (want one of: read_limit, ping_interval, read_timeout, min_backoff, max_backoff, tokens_dir, token_warning, rules_interval)"},
	} {
		if got := parseErr(t, tc.src); got != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
	// The line must survive into the structured error too.
	_, err := Parse([]byte("buffer:\n  path: /x\n  bogus: 3\n"+oneStream), "f")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 3 || errs[0].Field != "buffer.bogus" {
		t.Errorf("errs = %#v, want one error at line 3 on buffer.bogus", errs)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"buffer:\n  queue: many\n" + oneStream,
			`lablog.yaml:2: buffer.queue: got "many", want an integer`},
		{"compaction:\n  grace: 120\n" + oneStream,
			"lablog.yaml:2: compaction.grace: got the number 120 (a duration needs a unit), want a duration such as 90s, 2m or 1h"},
		{"compaction:\n  open_hours: maybe\n" + oneStream,
			`lablog.yaml:2: compaction.open_hours: got "maybe", want true or false`},
		{"buffer:\n  max_size: 1MB\n" + oneStream,
			`lablog.yaml:2: buffer.max_size: invalid size unit "MB" in "1MB": want B, KiB, MiB or GiB`},
		{"sources:\n  read_limit: [1]\n" + oneStream,
			"lablog.yaml:2: sources.read_limit: want a size such as 512KiB, 1MiB or 1GiB"},
		{"buffer: 3\n" + oneStream,
			"lablog.yaml:1: buffer: got the number 3, want a mapping of keys"},
		{"streams:\n  - spin30\n",
			`lablog.yaml:2: streams[0]: got "spin30", want a mapping with name and one of url, relay_host or relay`},
		{"streams:\n  name: spin30\n",
			"lablog.yaml:2: streams: got a mapping, want a list of streams"},
		{"buffer:\n  queue: 1\n  queue: 2\n" + oneStream,
			`lablog.yaml:3: buffer.queue: mapping key "queue" already defined at line 2`},
		{"buffer:\n  path: [\n",
			"lablog.yaml:2: did not find expected node content"},
		// A tab: the parser blames the line before it.
		{"buffer:\n  path: /b.db\n\tqueue: 5\n" + oneStream,
			"lablog.yaml:3: a tab in the indentation: YAML indents with spaces only"},
		// A key indented out of line: the parser blames the line before it.
		{"buffer:\n  path: /b.db\n archive:\n  path: /a\n" + oneStream,
			"lablog.yaml:3: this line's indentation does not line up with the lines above"},
		// A bad size does not hide the problems after it.
		{"buffer:\n  max_size: 1MB\n  queue: 0\nstreams:\n  - name: s\n    url: ftp://h/x\n",
			"lablog.yaml:2: buffer.max_size: invalid size unit \"MB\" in \"1MB\": want B, KiB, MiB or GiB\n" +
				"lablog.yaml:3: buffer.queue: must be positive, got 0\n" +
				"lablog.yaml:6: streams[0].url: scheme must be ws or wss, got \"ftp\""},
		// The grace is not blamed for a bad interval.
		{"compaction:\n  interval: 0s\n" + oneStream,
			"lablog.yaml:2: compaction.interval: must be at least 1s, got 0s"},
	} {
		if got := parseErr(t, tc.src); got != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestWholeFileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "lablog.yaml: file is empty: it needs at least a streams list"},
		{"# only a comment\n", "lablog.yaml: file is empty: it needs at least a streams list"},
		{"---\n", "lablog.yaml: file is empty: it needs at least a streams list"},
		{oneStream + "---\n" + oneStream,
			"lablog.yaml:4: more than one YAML document (---): the file must hold exactly one"},
		{"- spin30\n", "lablog.yaml:1: the top level must be a mapping of sections (buffer, archive, compaction, sources, streams)"},
		{"buffer:\n  path: /x\n", "lablog.yaml: streams: at least one stream is required (or an addlog listener)"},
	} {
		if got := parseErr(t, tc.src); got != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lablog.yaml")
	src := "buffer:\n  path: data/buffer.db\narchive:\n  path: /abs/archive\n" + oneStream
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data/buffer.db"); c.Buffer.Path != want {
		t.Errorf("buffer.path = %q, want %q", c.Buffer.Path, want)
	}
	if c.Archive.Path != "/abs/archive" {
		t.Errorf("archive.path = %q, want it unchanged", c.Archive.Path)
	}
	// Parse has no file, so it must not guess a directory.
	if p := mustParse(t, src).Buffer.Path; p != "data/buffer.db" {
		t.Errorf("Parse buffer.path = %q, want it as written", p)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	file := filepath.Join(t.TempDir(), "lablog.yaml")
	if err := os.WriteFile(file, []byte("bogus: 1\n"+oneStream), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(file); err == nil || !strings.HasPrefix(err.Error(), file+":1: bogus: unknown key") {
		t.Errorf("Load error = %v, want it to name the file and line", err)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "lablog.yaml", Line: 12, Field: "streams[1].url", Msg: "scheme must be ws or wss"},
			"lablog.yaml:12: streams[1].url: scheme must be ws or wss"},
		{FieldError{File: "lablog.yaml", Field: "streams", Msg: "m"}, "lablog.yaml: streams: m"},
		{FieldError{Line: 3, Msg: "m"}, "line 3: m"},
		{FieldError{Field: "buffer.path", Msg: "m"}, "buffer.path: m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestErrorsOnePerLine(t *testing.T) {
	errs := Errors{
		{File: "lablog.yaml", Line: 2, Field: "buffer.queue", Msg: "must be positive, got 0"},
		{File: "lablog.yaml", Line: 12, Field: "streams[1].url", Msg: "scheme must be ws or wss"},
	}
	want := "lablog.yaml:2: buffer.queue: must be positive, got 0\nlablog.yaml:12: streams[1].url: scheme must be ws or wss"
	if got := errs.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The example marks itself, and its placeholder stream is named; a file of
// real hosts has no warning.
func TestWarnings(t *testing.T) {
	c, err := Parse(Example(), "example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Warnings("/etc/lablog/lablog.yaml")
	want := []string{
		"/etc/lablog/lablog.yaml is still the example configuration (example: true): put your streams in, delete the line example: true, check it (lablog config check /etc/lablog/lablog.yaml), then start lablog",
		"streams[3].url: example.org is an example host name, which never answers: cam0 cannot connect",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example's warnings:\n got %q\nwant %q", got, want)
	}
	c = mustParse(t, `
streams:
  - {name: a, url: "wss://Lab.Example.COM./a"}
  - {name: b, relay: "https://relay.invalid"}
  - {name: c, relay_host: "ws://pi.test:8888"}
  - {name: d, url: "wss://example.org.uk/d"}
  - {name: e, relay: "https://relay-access.practable.io"}
`)
	got = c.Warnings("x.yaml")
	want = []string{
		"streams[0].url: Lab.Example.COM. is an example host name, which never answers: a cannot connect",
		"streams[1].relay: relay.invalid is an example host name, which never answers: b cannot connect",
		"streams[2].relay_host: pi.test is an example host name, which never answers: c cannot connect",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
	if err := c.NotReady("x.yaml"); err != nil {
		t.Errorf("a file without example: true is not ready: %v", err)
	}
}
