package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/testing/relaytest"
)

const tokensSecret = "the-shared-secret-9f8e7d"

func secretFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "sessionrelay.pat")
	if err := os.WriteFile(f, []byte(tokensSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// verify checks a token the way the relay does, independently of package
// relay: the library, the secret, HS256, and every claim.
func verify(t *testing.T, tok, access, topic string, scopes []string, lifetime time.Duration) {
	t.Helper()
	var c jwt.MapClaims
	parsed, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(tokensSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(access), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil || !parsed.Valid {
		t.Fatalf("%s: does not verify: %v", topic, err)
	}
	if parsed.Header["alg"] != "HS256" {
		t.Fatalf("%s: alg %v", topic, parsed.Header["alg"])
	}
	iat, _ := c.GetIssuedAt()
	nbf, _ := c.GetNotBefore()
	exp, _ := c.GetExpirationTime()
	if d := time.Since(iat.Time); d < 0 || d > time.Minute || !nbf.Equal(iat.Time) || exp.Sub(iat.Time) != lifetime {
		t.Fatalf("%s: iat %v nbf %v exp %v", topic, iat, nbf, exp)
	}
	var want []any
	for _, s := range scopes {
		want = append(want, s)
	}
	if c["topic"] != topic || c["prefix"] != "session" || !reflect.DeepEqual(c["scopes"], want) ||
		c["booking_id"] != "lablog-"+topic || !reflect.DeepEqual(c["aud"], []any{access}) || len(c) != 8 {
		t.Fatalf("%s: claims %v", topic, c)
	}
}

func TestTokensCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tokens")
	const access = "https://relay-access.practable.io"
	stdout, err := runCmd(t, "tokens", "--secret-file", secretFile(t), "--access", access+"/",
		"--streams", "spin30-32, pend00", "--lifetime", "48h", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	for _, name := range []string{"spin30", "spin31", "spin32", "pend00"} {
		topic := name + "-log"
		a, err := os.ReadFile(relay.AccessFile(out, name))
		if err != nil || string(a) != access+"/session/"+topic+"\n" {
			t.Fatalf("%s access file %q, %v", name, a, err)
		}
		tok, err := os.ReadFile(relay.TokenFile(out, name))
		if err != nil {
			t.Fatal(err)
		}
		verify(t, strings.TrimSpace(string(tok)), access, topic, []string{"read"}, 48*time.Hour)
		for _, f := range []string{relay.AccessFile(out, name), relay.TokenFile(out, name)} {
			if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v", f, st.Mode().Perm())
			}
		}
		if strings.Contains(stdout, strings.TrimSpace(string(tok))) {
			t.Fatal("the output shows a token")
		}
		if !strings.Contains(stdout, name+": topic "+topic+", scopes read, expires ") {
			t.Errorf("output lacks %s:\n%s", name, stdout)
		}
	}
	if strings.Contains(stdout, tokensSecret) || !strings.Contains(stdout, "wrote 4 tokens to "+out) {
		t.Fatalf("output:\n%s", stdout)
	}

	// --write opts in to the write scope.
	if _, err := runCmd(t, "tokens", "--secret-file", secretFile(t), "--access", access, "--streams", "spin40", "--write", "--out", out); err != nil {
		t.Fatal(err)
	}
	tok, _ := os.ReadFile(relay.TokenFile(out, "spin40"))
	verify(t, strings.TrimSpace(string(tok)), access, "spin40-log", []string{"read", "write"}, 8760*time.Hour)
}

func TestTokensCommandErrorsKeepTheSecret(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	good := secretFile(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--access", "https://r", "--streams", "a"}, "usage: --secret-file required"},
		{[]string{"--secret-file", good, "--access", "wss://r", "--streams", "a"}, "want the relay's access base URL"},
		{[]string{"--secret-file", good, "--access", "https://r/session/a-log", "--streams", "a"}, "without /session/<topic>"},
		{[]string{"--secret-file", good, "--access", "https://r", "--streams", "spin41-30"}, "start 41 is after end 30"},
		{[]string{"--secret-file", good, "--access", "https://r", "--streams", "a", "--lifetime", "-1h"}, "--lifetime must be positive"},
		{[]string{"--secret-file", empty, "--access", "https://r", "--streams", "a"}, "secret file " + empty + " is empty"},
		{[]string{"--secret-file", filepath.Join(dir, "nope"), "--access", "https://r", "--streams", "a"}, "no such file"},
	} {
		out, err := runCmd(t, append([]string{"tokens", "--out", filepath.Join(dir, "out")}, tc.args...)...)
		if err == nil {
			t.Errorf("%v: succeeded", tc.args)
			continue
		}
		text := out + err.Error()
		if !strings.Contains(text, strings.TrimPrefix(tc.want, "usage: ")) || strings.Contains(text, tokensSecret) {
			t.Errorf("%v: %q, want %q and no secret", tc.args, text, tc.want)
		}
		if errors.Is(err, errUsage) != strings.HasPrefix(tc.want, "usage") {
			t.Errorf("%v: usage error %v", tc.args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Error("a failed run wrote files")
	}
}

// Tokens from the command open a session on the relay double, and config
// check reports each stream's token.
func TestTokensWorkAndConfigCheckShowsThem(t *testing.T) {
	r, err := relaytest.NewRelay(relaytest.RelayOptions{Secret: []byte(tokensSecret)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if out, err := runCmd(t, "tokens", "--secret-file", secretFile(t), "--access", r.URL(), "--streams", "spin30-31", "--out", tokens); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tok, _ := os.ReadFile(relay.TokenFile(tokens, "spin30"))
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	uri, err := relay.Access(c, nil, r.AccessURL("spin30-log"), string(tok))
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()

	cfgPath := filepath.Join(dir, "lablog.yaml")
	_ = os.WriteFile(cfgPath, []byte("streams:\n  - name: spin30-31\n    relay: "+r.URL()+"\n"), 0o600)
	out, err := runCmd(t, "config", "check", cfgPath)
	exp := time.Now().UTC().Add(8760 * time.Hour).Format(time.DateOnly)
	if err != nil || !strings.Contains(out, "spin30: token for spin30-log expires "+exp+" (364 days)") || !strings.Contains(out, "spin31: token for spin31-log") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	_ = os.Remove(relay.TokenFile(tokens, "spin31"))
	out, err = runCmd(t, "config", "check", cfgPath)
	if err != nil || !strings.Contains(out, "warning: spin31: no relay token: open "+relay.TokenFile(tokens, "spin31")) ||
		!strings.Contains(out, "warning: 1 streams have relay tokens that cannot work") {
		t.Fatalf("config check without spin31's token: %v\n%s", err, out)
	}
	if strings.Contains(out, string(tok)) {
		t.Fatal("config check shows a token")
	}
	// A token file others may read is refused, as shared upload credentials are.
	spin30 := relay.TokenFile(tokens, "spin30")
	_ = os.Chmod(spin30, 0o644)
	out, err = runCmd(t, "config", "check", cfgPath)
	if want := spin30 + ": mode 0644 lets others read or change it: chmod 600 " + spin30; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("config check with a world-readable token file: %v, want %q\n%s", err, want, out)
	}
	if strings.Contains(out+err.Error(), string(tok)) {
		t.Fatal("config check shows a token")
	}
}
