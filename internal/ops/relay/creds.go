package relay

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/platform/atomicfile"
	"github.com/practable/lablog/internal/platform/secretfile"
	"github.com/practable/lablog/internal/record/source"
)

// AccessFile is the file holding stream's access URL in a token folder, as
// the old scripts named it: log.access.spin30.
func AccessFile(dir, stream string) string { return filepath.Join(dir, "log.access."+stream) }

// TokenFile is the file holding stream's token: log.token.spin30.
func TokenFile(dir, stream string) string { return filepath.Join(dir, "log.token."+stream) }

// WriteTokenFiles writes stream's access URL and token into dir (created
// 0700 if missing), each file 0600 and replaced atomically, so a running
// lablog never reads half a token.
func WriteTokenFiles(dir, stream, access, token string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token folder: %w", err)
	}
	if err := writeSecret(AccessFile(dir, stream), access+"\n"); err != nil {
		return err
	}
	return writeSecret(TokenFile(dir, stream), token+"\n")
}

func writeSecret(path, data string) error {
	return atomicfile.WriteFile(path, []byte(data), 0o600)
}

// Credentials say where one stream's access URL and token come from:
// given inline, or read from files afresh at every use, so a renewed token
// file takes effect without a restart. A token file must pass
// secretfile.CheckMode; the access URL is no secret.
type Credentials struct {
	Stream     string
	Access     string // access URL {base}/session/{topic}; when empty, AccessFile is read
	AccessFile string
	Token      string // the token; when empty, TokenFile is read
	TokenFile  string
}

// Loaded is what Credentials pointed at when read.
type Loaded struct {
	Access string
	Token  string
	Claims Claims
}

// Load reads the access URL and the token and checks that the relay could
// accept them at now. A problem that retrying cannot fix comes back as a
// *source.Blocked whose State says what to do about it; the token's
// contents never appear in it.
func (c Credentials) Load(now time.Time) (Loaded, error) {
	var l Loaded
	var err error
	if l.Access, err = inlineOrFile(c.Access, c.AccessFile, os.ReadFile); err != nil {
		return l, invalid("no access URL: %v", err)
	}
	if l.Token, err = inlineOrFile(c.Token, c.TokenFile, secretfile.ReadFile); err != nil {
		b := invalid("no relay token: %v", err)
		b.Err = err // a *secretfile.ModeError fails lablog config check
		return l, b
	}
	if l.Claims, err = ParseUnverified(l.Token); err != nil {
		return l, invalid("relay token unusable: %v", err)
	}
	base, topic, err := SplitAccessURL(l.Access)
	if err != nil {
		return l, invalid("%v", err)
	}
	cl := l.Claims
	switch {
	case cl.Topic != topic:
		return l, &source.Blocked{TokenState: source.TokenWrongTopic, TokenExpiry: cl.ExpiresAt,
			State: fmt.Sprintf("token is for topic %s, not %s", cl.Topic, topic)}
	case !SameBase(cl.Audience, base):
		return l, blocked(cl, "token is for relay %s, not %s", cl.Audience, base)
	case cl.Prefix != Prefix:
		return l, blocked(cl, "token is for the relay's %q service, not %q", cl.Prefix, Prefix)
	case !cl.Can(ScopeRead):
		return l, blocked(cl, "token lacks the %s scope", ScopeRead)
	case cl.Expired(now):
		return l, expired(cl.ExpiresAt)
	}
	return l, nil
}

// inlineOrFile returns inline, or else what read finds in file.
func inlineOrFile(inline, file string, read func(string) ([]byte, error)) (string, error) {
	if inline != "" {
		return strings.TrimSpace(inline), nil
	}
	if file == "" {
		return "", errors.New("neither given inline nor a file")
	}
	data, err := read(file)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}

func invalid(format string, args ...any) *source.Blocked {
	return &source.Blocked{TokenState: source.TokenInvalid, State: fmt.Sprintf(format, args...)}
}

func blocked(c Claims, format string, args ...any) error {
	return &source.Blocked{TokenState: source.TokenInvalid, TokenExpiry: c.ExpiresAt, State: fmt.Sprintf(format, args...)}
}

func expired(exp time.Time) error {
	return &source.Blocked{TokenState: source.TokenExpired, TokenExpiry: exp,
		State: source.TokenExpiredState(exp)}
}

// fingerprint tells tokens apart without revealing them.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// Direct is the source.Config.Prepare of a stream read from the relay
// itself: before each dial it reads the credentials afresh, checks them,
// and runs the access protocol for a one-time URI the source dials at once.
// now nil means time.Now; client nil, Access's default.
func Direct(c Credentials, client *http.Client, now func() time.Time) func(context.Context) (source.Target, error) {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context) (source.Target, error) {
		l, err := c.Load(now())
		if err != nil {
			return source.Target{}, err
		}
		uri, err := Access(ctx, client, l.Access, l.Token)
		switch {
		case errors.Is(err, ErrWrongTopic):
			return source.Target{}, &source.Blocked{TokenState: source.TokenWrongTopic, TokenExpiry: l.Claims.ExpiresAt,
				State: "the relay says the token is for another topic than " + l.Access}
		case errors.Is(err, ErrTokenExpired):
			return source.Target{}, expired(l.Claims.ExpiresAt)
		case err != nil:
			return source.Target{}, err
		}
		return source.Target{URL: uri, TokenExpiry: l.Claims.ExpiresAt, TokenID: fingerprint(l.Token)}, nil
	}
}

// Watch is the source.Config.Prepare of a relay host stream whose rule
// lablog provisions: the URL is the host's and fixed, but the token's
// expiry is shown, and a token that cannot work stops the stream (the host
// would retry it forever) until it is renewed.
func Watch(c Credentials, now func() time.Time) func(context.Context) (source.Target, error) {
	if now == nil {
		now = time.Now
	}
	return func(context.Context) (source.Target, error) {
		l, err := c.Load(now())
		if err != nil {
			return source.Target{}, err
		}
		return source.Target{TokenExpiry: l.Claims.ExpiresAt, TokenID: fingerprint(l.Token)}, nil
	}
}
