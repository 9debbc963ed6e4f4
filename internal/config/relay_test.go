package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const fakeToken = "eyJhbGciOiJIUzI1NiJ9.eyJ0b3BpYyI6InNwaW4zMC1sb2cifQ.c2VjcmV0LXNpZ25hdHVyZQ"

func TestRelayStreams(t *testing.T) {
	c := mustParse(t, `
sources:
  tokens_dir: /etc/lablog/tokens
streams:
  - name: spin30-31
    relay: https://relay-access.practable.io/
  - name: spin32
    relay: https://app.practable.io/ed0/access
    tokens_dir: /other
  - name: spin33
    relay: http://127.0.0.1:9000
    token: `+fakeToken+`
  - name: pend00-01
    relay_host: ws://127.0.0.1:8888
    tokens_dir: /etc/practable
  - name: pend02
    relay_host: http://127.0.0.1:8888
    access: https://relay-access.practable.io/session/pend02-log
    token: `+fakeToken+`
  - name: pend03
    relay_host: ws://127.0.0.1:8888
`)
	want := []Stream{
		{Name: "spin30", Kind: KindRelay, Relay: "https://relay-access.practable.io", TokensDir: "/etc/lablog/tokens"},
		{Name: "spin31", Kind: KindRelay, Relay: "https://relay-access.practable.io", TokensDir: "/etc/lablog/tokens"},
		{Name: "spin32", Kind: KindRelay, Relay: "https://app.practable.io/ed0/access", TokensDir: "/other"},
		{Name: "spin33", Kind: KindRelay, Relay: "http://127.0.0.1:9000", TokensDir: "/etc/lablog/tokens", Token: fakeToken},
		{Name: "pend00", Kind: KindRelayHost, URL: "ws://127.0.0.1:8888/ws/pend00", RelayHost: "ws://127.0.0.1:8888", TokensDir: "/etc/practable"},
		{Name: "pend01", Kind: KindRelayHost, URL: "ws://127.0.0.1:8888/ws/pend01", RelayHost: "ws://127.0.0.1:8888", TokensDir: "/etc/practable"},
		{Name: "pend02", Kind: KindRelayHost, URL: "ws://127.0.0.1:8888/ws/pend02", RelayHost: "ws://127.0.0.1:8888",
			Token: fakeToken, Access: "https://relay-access.practable.io/session/pend02-log"},
		{Name: "pend03", Kind: KindRelayHost, URL: "ws://127.0.0.1:8888/ws/pend03", RelayHost: "ws://127.0.0.1:8888"},
	}
	got := c.Streams()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("streams\n got %+v\nwant %+v", got, want)
	}
	// sources.tokens_dir is for relay streams: a relay_host entry without
	// tokens of its own only reads, as before.
	for _, s := range got {
		if s.HasToken() != (s.Name != "pend03") {
			t.Errorf("%s: HasToken %v", s.Name, s.HasToken())
		}
	}
}

// userinfoMsg is the error for a URL with user:password@.
const userinfoMsg = "has a user name or password (user:password@host), which lablog never sends: remove it (relay tokens go in token or tokens_dir)"

func TestRelayValidation(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"relay and url", "streams:\n  - name: a\n    url: ws://h/a\n    relay: https://r\n",
			"lablog.yaml:2: streams[0]: set only one of url, relay_host and relay"},
		{"relay scheme", "streams:\n  - name: a\n    relay: wss://r\n",
			`lablog.yaml:3: streams[0].relay: scheme must be https, got "wss" (http only for a relay on this machine): this is the relay's access URL, e.g. https://relay-access.practable.io`},
		{"relay over http", "streams:\n  - name: a\n    relay: http://relay.example.org\n",
			`lablog.yaml:3: streams[0].relay: scheme must be https, got "http" (http only for a relay on this machine): this is the relay's access URL, e.g. https://relay-access.practable.io`},
		{"relay with session", "streams:\n  - name: a\n    relay: https://r/session/a-log\n",
			`lablog.yaml:3: streams[0].relay: "https://r/session/a-log": give the base only: /session/<topic> is added for you`},
		{"relay query", "streams:\n  - name: a\n    relay: https://r/?x=1\n",
			`lablog.yaml:3: streams[0].relay: "https://r/?x=1" must have no query, fragment or user`},
		{"relay without any token", "sources:\n  tokens_dir: \"\"\nstreams:\n  - name: a\n    relay: https://r\n",
			"lablog.yaml:4: streams[0]: a relay stream needs a token: set token, tokens_dir or sources.tokens_dir"},
		{"relay with access", "streams:\n  - name: a\n    relay: https://r\n    access: https://r/session/a-log\n",
			"lablog.yaml:4: streams[0].access: only relay_host streams use access: a relay stream joins <relay>/session/<name>-log"},
		{"token on a range", "streams:\n  - name: a1-2\n    relay: https://r\n    token: " + fakeToken + "\n",
			"lablog.yaml:4: streams[0].token: a token is for one stream, and a1-2 is a range: put the tokens in tokens_dir"},
		{"token not a jwt", "streams:\n  - name: a\n    relay: https://r\n    token: secret-password\n",
			"lablog.yaml:4: streams[0].token: is not a JWT (want three base64 parts separated by dots)"},
		{"tokens on url", "streams:\n  - name: a\n    url: ws://h/a\n    tokens_dir: /t\n",
			"lablog.yaml:4: streams[0].tokens_dir: only relay and relay_host streams use relay tokens"},
		{"host token without access", "streams:\n  - name: a\n    relay_host: ws://h\n    token: " + fakeToken + "\n",
			"lablog.yaml:4: streams[0].token: set access too (the relay's {access}/session/{topic} URL), or tokens_dir holding log.access.a"},
		{"host access without token", "streams:\n  - name: a\n    relay_host: ws://h\n    access: https://r/session/a-log\n",
			"lablog.yaml:4: streams[0].access: set token or tokens_dir too: lablog provisions the host's rule with both"},
		{"access shape", "streams:\n  - name: a\n    relay_host: ws://h\n    access: https://r/a-log\n    tokens_dir: /t\n",
			`lablog.yaml:4: streams[0].access: "https://r/a-log": want the relay's access URL {base}/session/{topic}`},
		{"access on a range", "streams:\n  - name: a1-2\n    relay_host: ws://h\n    access: https://r/session/a-log\n    tokens_dir: /t\n",
			"lablog.yaml:4: streams[0].access: an access URL is for one stream, and a1-2 is a range: put log.access.<name> files in tokens_dir"},
		{"url with a password", "streams:\n  - name: a\n    url: wss://bob:hunter2@h/a\n",
			"lablog.yaml:3: streams[0].url: " + userinfoMsg},
		{"relay with a password", "streams:\n  - name: a\n    relay: https://bob:hunter2@r\n",
			"lablog.yaml:3: streams[0].relay: " + userinfoMsg},
		{"relay host with a user", "streams:\n  - name: a\n    relay_host: ws://hunter2@h\n",
			"lablog.yaml:3: streams[0].relay_host: " + userinfoMsg},
		{"access with a password", "streams:\n  - name: a\n    relay_host: ws://h\n    access: https://bob:hunter2@r/session/a-log\n    tokens_dir: /t\n",
			"lablog.yaml:4: streams[0].access: " + userinfoMsg},
		{"token warning", "sources:\n  token_warning: 0s\n" + oneStream,
			"lablog.yaml:2: sources.token_warning: must be positive, got 0s"},
		{"rules interval", "sources:\n  rules_interval: -1s\n" + oneStream,
			"lablog.yaml:2: sources.rules_interval: must be positive, got -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseErr(t, tc.src)
			if got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
			if strings.Contains(got, "c2VjcmV0") || strings.Contains(got, "secret-password") || strings.Contains(got, "hunter2") {
				t.Errorf("the error quotes a token: %s", got)
			}
		})
	}
}

func TestLoadResolvesTokensDirs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lablog.yaml")
	src := "streams:\n  - name: a\n    relay: https://r\n  - name: b\n    relay_host: ws://h\n    tokens_dir: host-tokens\n  - name: c\n    relay: https://r\n    tokens_dir: /abs\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Streams()
	if s[0].TokensDir != filepath.Join(dir, "tokens") || s[1].TokensDir != filepath.Join(dir, "host-tokens") || s[2].TokensDir != "/abs" {
		t.Fatalf("tokens dirs %q %q %q", s[0].TokensDir, s[1].TokensDir, s[2].TokensDir)
	}
}

func TestExpandList(t *testing.T) {
	got, err := ExpandList("spin30-32, pend00")
	if err != nil || !slices.Equal(got, []string{"spin30", "spin31", "spin32", "pend00"}) {
		t.Fatalf("ExpandList = %v, %v", got, err)
	}
	for list, want := range map[string]string{
		"spin41-30":        "start 41 is after end 30",
		"spin30-32,spin31": "spin31 is given twice",
		" , ":              "no stream names",
		"spin30,bad name":  "only letters, digits and - are allowed",
		"api":              "api is reserved",
	} {
		if _, err := ExpandList(list); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ExpandList(%q) = %v, want an error with %q", list, err, want)
		}
	}
}

// A relay on this machine (one under test) may use plain http.
func TestRelayOverHTTPOnlyOnLoopback(t *testing.T) {
	for _, base := range []string{"http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:9000/access"} {
		src := "streams:\n  - name: a\n    relay: " + base + "\n    token: " + fakeToken + "\n"
		if _, err := Parse([]byte(src), "lablog.yaml"); err != nil {
			t.Errorf("%s: %v", base, err)
		}
	}
}

// A file holding a token inline is a secret: others may not read or change
// it. Without a token the file may be world-readable.
func TestLoadRefusesSharedFileWithInlineToken(t *testing.T) {
	dir := t.TempDir()
	withToken := filepath.Join(dir, "token.yaml")
	write := func(path, src string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	src := "streams:\n  - name: a\n    relay: https://r\n    token: " + fakeToken + "\n"
	for _, mode := range []os.FileMode{0o600, 0o640} {
		write(withToken, src, mode)
		if _, err := Load(withToken); err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o666, 0o644, 0o620} {
		write(withToken, src, mode)
		_, err := Load(withToken)
		want := fmt.Sprintf("%s: mode %04o lets others read or change it: chmod 600 %s", withToken, mode, withToken)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), fakeToken) {
			t.Fatalf("mode %04o: err %v, want %q", mode, err, want)
		}
	}
	noToken := filepath.Join(dir, "plain.yaml")
	write(noToken, "streams:\n  - name: a\n    url: ws://127.0.0.1:1/a\n", 0o644)
	if _, err := Load(noToken); err != nil {
		t.Fatalf("no token, mode 0644: %v", err)
	}
}
