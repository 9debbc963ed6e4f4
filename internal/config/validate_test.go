package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidationErrors(t *testing.T) {
	// Each case is a whole file, so the wanted text pins the line as well.
	for _, tc := range []struct{ name, src, want string }{
		{"empty buffer path", "buffer:\n  path: \"\"\n" + oneStream,
			"lablog.yaml:2: buffer.path: must not be empty"},
		{"zero max_size", "buffer:\n  max_size: 0\n" + oneStream,
			"lablog.yaml:2: buffer.max_size: must be positive, got 0B"},
		{"zero queue", "buffer:\n  queue: 0\n" + oneStream,
			"lablog.yaml:2: buffer.queue: must be positive, got 0"},
		{"long commit interval", "buffer:\n  commit_interval: 10s\n" + oneStream,
			"lablog.yaml:2: buffer.commit_interval: must be between 0s and 5s, got 10s"},
		{"empty archive path", "archive:\n  path: ''\n" + oneStream,
			"lablog.yaml:2: archive.path: must not be empty"},
		{"bad require", "archive:\n  require: label\n" + oneStream,
			`lablog.yaml:2: archive.require: must be marker, mountpoint or none, got "label"`},
		{"negative row groups", "archive:\n  row_group_rows: -1\n" + oneStream,
			"lablog.yaml:2: archive.row_group_rows: must be positive, got -1"},
		{"interval under 1s", "compaction:\n  interval: 500ms\n  grace: 0s\n" + oneStream,
			"lablog.yaml:2: compaction.interval: must be at least 1s, got 500ms"},
		{"negative grace", "compaction:\n  grace: -1s\n" + oneStream,
			"lablog.yaml:2: compaction.grace: must be at least 0 and less than compaction.interval (1h0m0s), got -1s"},
		{"grace not under interval", "compaction:\n  interval: 1m\n  grace: 1m\n" + oneStream,
			"lablog.yaml:3: compaction.grace: must be at least 0 and less than compaction.interval (1m0s), got 1m0s"},
		{"zero retry", "compaction:\n  retry: 0s\n" + oneStream,
			"lablog.yaml:2: compaction.retry: must be positive, got 0s"},
		{"zero export", "analytics:\n  export: 0s\n" + oneStream,
			"lablog.yaml:2: analytics.export: must be positive, got 0s"},
		{"bad time zone", "analytics:\n  time_zone: Mars/Olympus\n" + oneStream,
			`lablog.yaml:2: analytics.time_zone: "Mars/Olympus" is no IANA time zone (e.g. Europe/London): unknown time zone Mars/Olympus`},
		{"dashboards without the live store", "analytics:\n  live: false\naddlog:\n  listen: \":8081\"\n  allowed_origins: [\"*\"]\n",
			"lablog.yaml:3: addlog.dashboards.serve: needs analytics.live: the dashboards are answered from the live store"},
		{"bad dashboards origin", "addlog:\n  listen: \":8081\"\n  allowed_origins: [\"*\"]\n  dashboards:\n    allowed_origins: [\"dash.example\"]\n",
			`lablog.yaml:5: addlog.dashboards.allowed_origins[0]: "dash.example" is not an origin: want scheme://host[:port], e.g. https://dev.practable.io`},
		{"zero read_limit", "sources:\n  read_limit: 0B\n" + oneStream,
			"lablog.yaml:2: sources.read_limit: must be positive, got 0B"},
		{"addlog without origins", "addlog:\n  listen: \":8081\"\n",
			`lablog.yaml:1: addlog.allowed_origins: must name the origins of the pages that call /addLog (e.g. https://dev.practable.io), or "*" for any`},
		{"addlog origin with a path", "addlog:\n  listen: \":8081\"\n  allowed_origins: [https://lab.example/ui]\n",
			`lablog.yaml:3: addlog.allowed_origins[0]: "https://lab.example/ui" is not an origin: want scheme://host[:port], e.g. https://dev.practable.io`},
		{"addlog bad proxy", "addlog:\n  listen: \":8081\"\n  allowed_origins: [\"*\"]\n  trusted_proxies: [10.0.0.0/33]\n",
			`lablog.yaml:4: addlog.trusted_proxies[0]: "10.0.0.0/33" is not an address or prefix (10.0.0.1, 10.0.0.0/8)`},
		{"addlog half TLS", "addlog:\n  listen: \":8081\"\n  allowed_origins: [\"*\"]\n  tls: {cert_file: c.pem}\n",
			`lablog.yaml:4: addlog.tls: needs both cert_file and key_file, or neither`},
		{"forward without the listener", "addlog:\n  forward: {url: \"https://analytics.example/\"}\n" + oneStream,
			`lablog.yaml:2: addlog.forward.url: needs addlog.listen: only statements lablog receives are forwarded`},
		{"forward bad url", "addlog:\n  listen: \":8081\"\n  allowed_origins: [\"*\"]\n  forward: {url: \"analytics.example\"}\n",
			`lablog.yaml:4: addlog.forward.url: "analytics.example" is not a base URL: want http(s)://host[:port][/path], e.g. https://analytics.example/`},
		{"forward backoffs", "addlog:\n  listen: \":8081\"\n  allowed_origins: [\"*\"]\n  forward: {url: \"https://a.example\", min_backoff: 2m}\n",
			`lablog.yaml:4: addlog.forward.min_backoff: must be at least 10ms and at most max_backoff, got 2m0s and 1m0s`},
		{"host with a port", "status:\n  hosts: [lablog.lab, \"lablog.lab:80\"]\n" + oneStream,
			`lablog.yaml:2: status.hosts[1]: must be a host name such as lablog.example.org (no scheme, port or path), got "lablog.lab:80"`},
		{"zero ping", "sources:\n  ping_interval: 0s\n" + oneStream,
			"lablog.yaml:2: sources.ping_interval: must be positive, got 0s"},
		// read_timeout is not in the file, so the line is its section's.
		{"read_timeout not above ping", "sources:\n  ping_interval: 60s\n" + oneStream,
			"lablog.yaml:1: sources.read_timeout: must exceed sources.ping_interval (1m0s), got 1m0s"},
		{"zero min_backoff", "sources:\n  min_backoff: 0s\n" + oneStream,
			"lablog.yaml:2: sources.min_backoff: must be positive, got 0s"},
		{"max under min backoff", "sources:\n  min_backoff: 5s\n  max_backoff: 2s\n" + oneStream,
			"lablog.yaml:3: sources.max_backoff: must be at least sources.min_backoff (5s), got 2s"},
		{"listen without port", "status:\n  listen: localhost\n" + oneStream,
			`lablog.yaml:2: status.listen: "localhost": want host:port or :port (address localhost: missing port in address)`},
		{"listen bad port", "status:\n  listen: :http\n" + oneStream,
			`lablog.yaml:2: status.listen: ":http": port must be a number from 0 to 65535`},
		{"relative led path", "led:\n  path: leds/ACT\n" + oneStream,
			`lablog.yaml:2: led.path: must be an absolute path (a sysfs LED folder), got "leds/ACT"`},
		{"no streams", "streams: []\n",
			"lablog.yaml:1: streams: at least one stream is required (or an addlog listener)"},
		{"no name", "streams:\n  - relay_host: ws://h\n",
			"lablog.yaml:2: streams[0].name: is required"},
		{"bad name chars", "streams:\n  - name: spin_30\n    relay_host: ws://h\n",
			`lablog.yaml:2: streams[0].name: "spin_30": only letters, digits and - are allowed`},
		{"slash in name", "streams:\n  - name: lab/b\n    relay_host: ws://h\n",
			`lablog.yaml:2: streams[0].name: "lab/b": only letters, digits and - are allowed`},
		{"reserved api", "streams:\n  - name: api\n    relay_host: ws://h\n",
			"lablog.yaml:2: streams[0].name: api is reserved by the relay host"},
		{"both url and relay_host", "streams:\n  - name: a\n    url: ws://h/a\n    relay_host: ws://h\n",
			"lablog.yaml:2: streams[0]: set only one of url, relay_host and relay"},
		{"neither url nor relay_host", oneStream + "  - name: b\n",
			"lablog.yaml:4: streams[1]: set url, relay_host or relay"},
		{"url scheme", oneStream + "  - name: b\n    url: https://h/b\n",
			`lablog.yaml:5: streams[1].url: scheme must be ws or wss, got "https"`},
		{"url no host", oneStream + "  - name: b\n    url: ws:///b\n",
			`lablog.yaml:5: streams[1].url: "ws:///b" has no host`},
		{"range with url", "streams:\n  - name: pend00-03\n    url: wss://h/p\n",
			"lablog.yaml:2: streams[0].name: pend00-03 is a range, which needs relay_host or relay: with url every stream would share one URL"},
		{"relay_host scheme", "streams:\n  - name: a\n    relay_host: ftp://h\n",
			`lablog.yaml:3: streams[0].relay_host: scheme must be ws, wss, http or https, got "ftp"`},
		{"relay_host path", "streams:\n  - name: a\n    relay_host: ws://h:8888/ws\n",
			`lablog.yaml:3: streams[0].relay_host: "ws://h:8888/ws" must be only scheme://host[:port]: the stream path /ws/<name> is added for you`},
		{"relay_host no scheme", "streams:\n  - name: a\n    relay_host: localhost:8888\n",
			`lablog.yaml:3: streams[0].relay_host: scheme must be ws, wss, http or https, got "localhost"`},
		{"range backwards", "streams:\n  - name: spin41-30\n    relay_host: ws://h\n",
			"lablog.yaml:2: streams[0].name: range spin41-30: start 41 is after end 30"},
		{"range prefixes differ", "streams:\n  - name: spin30-pend41\n    relay_host: ws://h\n",
			`lablog.yaml:2: streams[0].name: range spin30-pend41: both ends must have the prefix "spin" (write spin30-41)`},
		{"range too long", "streams:\n  - name: s0-1000\n    relay_host: ws://h\n",
			"lablog.yaml:2: streams[0].name: range s0-1000: 1001 streams, more than the 1000 allowed"},
		{"range numbers overflow", "streams:\n  - name: s1-99999999999999999999\n    relay_host: ws://h\n",
			"lablog.yaml:2: streams[0].name: range s1-99999999999999999999: numbers too large"},
		{"duplicate in range", "streams:\n  - name: spin30-41\n    relay_host: ws://h\n  - name: spin35\n    url: ws://x/spin35\n",
			"lablog.yaml:4: streams[1].name: spin35 repeats stream spin35 of streams[0] (spin30-41)"},
		{"overlapping ranges", "streams:\n  - name: spin30-41\n    relay_host: ws://h\n  - name: spin36-45\n    relay_host: ws://g\n",
			"lablog.yaml:4: streams[1].name: spin36-45 repeats stream spin36, spin37, spin38 and 3 more of streams[0] (spin30-41)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseErr(t, tc.src); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Buffer.Queue = 0
	c.Archive.Require = "mountpoints"
	c.Sources.MaxBackoff = 0
	c.StreamSpecs = []StreamSpec{{Name: "a", URL: "http://h"}, {Name: "a", RelayHost: "ws://h"}}
	err := c.Validate()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Validate() = %v, want Errors", err)
	}
	var fields []string
	for _, e := range errs {
		if e.Line != 0 || e.File != "" {
			t.Errorf("%v: Validate alone cannot know file or line", e)
		}
		fields = append(fields, e.Field)
	}
	want := []string{"buffer.queue", "archive.require", "sources.max_backoff", "streams[0].url", "streams[1].name"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(want)-1 {
		t.Errorf("Error() has %d newlines, want one problem per line:\n%v", n, err)
	}
}

func TestValidateNilWhenValid(t *testing.T) {
	c := Default()
	c.StreamSpecs = []StreamSpec{{Name: "a", URL: "ws://h/a"}}
	// A nil Errors inside a non-nil error would make err != nil always true.
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %#v, want nil", err)
	}
}

func TestStreamsExpandRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"spin30-41", []string{"spin30", "spin31", "spin32", "spin33", "spin34", "spin35", "spin36", "spin37", "spin38", "spin39", "spin40", "spin41"}},
		{"pend00-03", []string{"pend00", "pend01", "pend02", "pend03"}},
		{"pend008-010", []string{"pend008", "pend009", "pend010"}},
		{"spin8-11", []string{"spin8", "spin9", "spin10", "spin11"}},
		{"spin30-spin32", []string{"spin30", "spin31", "spin32"}},
		{"spin30-30", []string{"spin30"}},
		{"30-32", []string{"30", "31", "32"}},
		{"lab-rig1-2", []string{"lab-rig1", "lab-rig2"}},
		// Not ranges: the last "-" lacks digits on one side.
		{"spin30-log", []string{"spin30-log"}},
		{"spin-30", []string{"spin-30"}},
		{"pend00", []string{"pend00"}},
	} {
		c := Config{StreamSpecs: []StreamSpec{{Name: tc.name, RelayHost: "ws://h"}}}
		var got []string
		for _, s := range c.Streams() {
			got = append(got, s.Name)
			if s.URL != "ws://h/ws/"+s.Name {
				t.Errorf("%s: URL %q, want ws://h/ws/%s", tc.name, s.URL, s.Name)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s expands to %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStreamsInFileOrder(t *testing.T) {
	c := mustParse(t, `
streams:
  - name: pend01
    url: wss://example.org/path?x=1
  - name: spin31-32
    relay_host: ws://h
  - name: lab-b
    relay_host: ws://h
`)
	want := []Stream{
		{Name: "pend01", Kind: KindURL, URL: "wss://example.org/path?x=1"},
		{Name: "spin31", Kind: KindRelayHost, URL: "ws://h/ws/spin31", RelayHost: "ws://h"},
		{Name: "spin32", Kind: KindRelayHost, URL: "ws://h/ws/spin32", RelayHost: "ws://h"},
		{Name: "lab-b", Kind: KindRelayHost, URL: "ws://h/ws/lab-b", RelayHost: "ws://h"},
	}
	if got := c.Streams(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRelayHostNormalised(t *testing.T) {
	for host, want := range map[string]string{
		"ws://127.0.0.1:8888":  "ws://127.0.0.1:8888/ws/s",
		"ws://127.0.0.1:8888/": "ws://127.0.0.1:8888/ws/s",
		"http://host:8888":     "ws://host:8888/ws/s",
		"HTTP://host":          "ws://host/ws/s",
		"https://relay.org/":   "wss://relay.org/ws/s",
		"wss://relay.org":      "wss://relay.org/ws/s",
	} {
		c := Config{StreamSpecs: []StreamSpec{{Name: "s", RelayHost: host}}}
		got := c.Streams()
		if len(got) != 1 || got[0].URL != want {
			t.Errorf("relay_host %s: streams %v, want URL %s", host, got, want)
		}
	}
	for _, bad := range []string{"ws://h/x", "ws://h?a=1", "ws://h/#f", "ws://u:p@h", "ws://", "h:8888", "%zz"} {
		if _, err := relayBase(bad); err == nil {
			t.Errorf("relay_host %q accepted", bad)
		}
	}
}

func TestStreamsSkipsInvalidEntries(t *testing.T) {
	c := Config{StreamSpecs: []StreamSpec{
		{Name: "spin41-30", RelayHost: "ws://h"},
		{Name: "pend00-01", URL: "ws://h/p"},
		{Name: "x", RelayHost: "ftp://h"},
		{Name: "ok", RelayHost: "ws://h"},
	}}
	if got, want := c.Streams(), []Stream{{Name: "ok", Kind: KindRelayHost, URL: "ws://h/ws/ok", RelayHost: "ws://h"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"100B": 100, "0": 0, "1048576": MiB, "512KiB": 512 * KiB, "1MiB": MiB,
		"1GiB": GiB, "3 GiB": 3 * GiB, " 2KiB ": 2 * KiB,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "1MB", "1M", "1mib", "1.5GiB", "-1", "+1", "1TiB", "0x10", "1GiBB", "9999999999GiB"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %v, want an error", bad, got)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{0: "0B", 100: "100B", 1536: "1536B", 2 * KiB: "2KiB", MiB: "1MiB", 1024 * MiB: "1GiB", 3 * GiB: "3GiB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}

func TestSizesInYAML(t *testing.T) {
	c := mustParse(t, "buffer:\n  max_size: 1073741824\nsources:\n  read_limit: 512KiB\n"+oneStream)
	if c.Buffer.MaxSize != GiB || c.Sources.ReadLimit != 512*KiB {
		t.Errorf("max_size %v, read_limit %v", c.Buffer.MaxSize, c.Sources.ReadLimit)
	}
}

func TestDurationsInYAML(t *testing.T) {
	c := mustParse(t, "compaction:\n  grace: 1m30s\n  interval: 2h\n"+oneStream)
	if c.Compaction.Grace != 90*time.Second || c.Compaction.Interval != 2*time.Hour {
		t.Errorf("compaction = %+v", c.Compaction)
	}
}

// A lab that runs only today's UIs needs no websocket stream.
func TestAddLogAloneIsValid(t *testing.T) {
	c, err := Parse([]byte("addlog: {listen: \":8081\", allowed_origins: [\"https://lab.example\"]}\n"), "lablog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("addlog alone: %v", err)
	}
	if len(c.Streams()) != 0 || !c.AddLog.Enabled() || c.AddLog.MaxBody != 64*KiB {
		t.Errorf("streams %v, addlog %+v", c.Streams(), c.AddLog)
	}
}

// JoinList names every stream, and ExpandList gives them back.
func TestJoinListRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"spin30", "spin31", "pend00", "spin32", "spin33", "pend01"}, "spin30-33,pend00-01"},
		{[]string{"spin30"}, "spin30"},
		{[]string{"spin30", "spin31", "spin33"}, "spin30-31,spin33"},
		{[]string{"spin8", "spin9", "spin10", "spin11"}, "spin8-11"},
		{[]string{"pend008", "pend009", "pend010"}, "pend008-010"},
		{[]string{"spin30-log", "spin31-log"}, "spin30-log,spin31-log"},
		{[]string{"lab-rig1", "lab-rig2", "x"}, "lab-rig1-2,x"},
	} {
		got := JoinList(tc.names)
		if got != tc.want {
			t.Errorf("JoinList(%q) = %q, want %q", tc.names, got, tc.want)
		}
		back, err := ExpandList(got)
		if err != nil || len(back) != len(tc.names) {
			t.Errorf("ExpandList(%q) = %q, %v; want the %d names back", got, back, err, len(tc.names))
		}
	}
}
