package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/platform/secretfile"
	"github.com/practable/lablog/internal/record/source"
)

// cmdTokens mints read-only relay tokens for lab streams and writes them as
// the old scripts did (log.access.<stream>, log.token.<stream>). It runs
// where the secret is, never on the device: only the tokens go there.
func cmdTokens(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokens", "--secret-file F --access URL --streams spin30-41 [--lifetime 8760h] [--out DIR] [--write]",
		"Mint read-only relay tokens for streams into token files (log.access.<stream>,\nlog.token.<stream>). Run it where the relay's secret is, never on the device:\ncopy only the --out folder there (the configuration's sources.tokens_dir).")
	secretFile := fs.String("secret-file", "", "`file` holding the relay's shared secret (required)")
	access := fs.String("access", "", "the relay's access base `URL`, e.g. https://relay-access.practable.io (required)")
	streams := fs.String("streams", "", "streams or ranges, comma-separated: spin30-41,pend00-03 (required)")
	lifetime := fs.Duration("lifetime", 8760*time.Hour, "how long the tokens are valid")
	out := fs.String("out", "tokens", "`folder` to write the token files to (created 0700)")
	write := fs.Bool("write", false, "also grant the write scope (a logger only needs read)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, val string }{{"--secret-file", *secretFile}, {"--access", *access}, {"--streams", *streams}} {
		if f.val == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return usageError(fs, stderr, "%s required", strings.Join(missing, ", "))
	}
	if fs.NArg() != 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	if *lifetime <= 0 {
		return fmt.Errorf("tokens: --lifetime must be positive, got %v", *lifetime)
	}
	base := strings.TrimRight(*access, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Contains(u.Path+"/", "/session/") {
		return fmt.Errorf("tokens: --access %q: want the relay's access base URL (https://...), without /session/<topic>", *access)
	}
	names, err := config.ExpandList(*streams)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	secret, err := readSecret(*secretFile)
	if err != nil {
		return err
	}
	scopes := []string{relay.ScopeRead}
	if *write {
		scopes = append(scopes, relay.ScopeWrite)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, name := range names {
		topic := relay.LogTopic(name)
		tok, err := relay.Mint(secret, relay.Claims{Topic: topic, Scopes: scopes, BookingID: "lablog-" + topic,
			Audience: base, IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(*lifetime)})
		if err != nil {
			return fmt.Errorf("tokens: %s: %w", name, err)
		}
		if err := relay.WriteTokenFiles(*out, name, relay.AccessURL(base, topic), tok); err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		fmt.Fprintf(stdout, "%s: topic %s, scopes %s, expires %s: %s\n", name, topic, strings.Join(scopes, "+"),
			now.Add(*lifetime).Format(time.DateOnly), relay.TokenFile(*out, name))
	}
	fmt.Fprintf(stdout, "wrote %d tokens to %s (files 0600); copy that folder, never the secret, to the device\n", len(names), *out)
	return nil
}

// readSecret reads the shared secret, trimmed as the old scripts' $(cat)
// did. Errors name the file, never its contents.
func readSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: secret file: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, fmt.Errorf("tokens: secret file %s is empty", path)
	}
	return []byte(s), nil
}

// checkTokens reads the token of every stream that has one and prints its
// state, as lablog would see it now, and returns how many cannot work. Such
// a token is a warning, not an error: the configuration is valid, lablog
// runs with that stream stopped, and a renewed file is picked up without a
// restart. Token files refused for their mode are returned too: config
// check fails on them, as on shared upload credentials.
func checkTokens(w io.Writer, cfg config.Config) (bad int, shared []error) {
	now := time.Now()
	for _, s := range cfg.Streams() {
		if !s.HasToken() {
			continue
		}
		l, err := wire.Credentials(s).Load(now)
		var b *source.Blocked
		switch {
		case errors.As(err, &b):
			bad++
			fmt.Fprintf(w, "warning: %s: %s\n", s.Name, b.State)
			if me := (*secretfile.ModeError)(nil); errors.As(err, &me) {
				shared = append(shared, me)
			}
		case err != nil:
			bad++
			fmt.Fprintf(w, "warning: %s: %v\n", s.Name, err)
		default:
			exp := l.Claims.ExpiresAt
			days := int(exp.Sub(now).Hours() / 24)
			note := ""
			if exp.Sub(now) < cfg.Sources.TokenWarning {
				note = ": renew it soon"
			}
			fmt.Fprintf(w, "%s: token for %s expires %s (%d days)%s\n", s.Name, l.Claims.Topic, exp.Format(time.DateOnly), days, note)
		}
	}
	if bad > 0 {
		fmt.Fprintf(w, "warning: %d streams have relay tokens that cannot work: they stay stopped until their tokens are fixed\n", bad)
	}
	return bad, shared
}
