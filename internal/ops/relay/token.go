// Package relay speaks to the practable relay: it mints and reads access
// tokens, runs the access protocol that turns a token into a one-time
// websocket URI, reads token files, and keeps a relay host's destination
// rules in place. docs/relay.md describes the relay it is built for.
//
// Tokens are credentials: nothing here puts a token or a secret into an
// error, a log line or a record.
package relay

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Scopes a relay token can grant on its topic.
const (
	ScopeRead  = "read"  // receive the topic's messages
	ScopeWrite = "write" // send messages to the topic
)

// Prefix is the connection type of every token lablog handles: the relay's
// "session" service (the /session/{topic} endpoint).
const Prefix = "session"

// Claims are the fields of a relay token.
type Claims struct {
	Topic     string   // e.g. spin30-log; must equal the topic of the access URL
	Prefix    string   // connection type; Mint uses Prefix when empty
	Scopes    []string // ScopeRead and/or ScopeWrite
	BookingID string   // must not be empty: the relay refuses such tokens
	Audience  string   // the access base URL, e.g. https://relay-access.practable.io
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
}

// jwtClaims is the wire form of Claims, as the relay reads it.
type jwtClaims struct {
	Topic     string   `json:"topic"`
	Prefix    string   `json:"prefix"`
	Scopes    []string `json:"scopes"`
	BookingID string   `json:"booking_id"`
	jwt.RegisteredClaims
}

// ErrMalformed means a token is not a relay token lablog can read.
var ErrMalformed = errors.New("malformed relay token")

// Mint signs c with secret (HS256), as the relay expects. The secret is
// never part of an error.
func Mint(secret []byte, c Claims) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint: empty secret")
	}
	if c.Prefix == "" {
		c.Prefix = Prefix
	}
	if err := c.check(); err != nil {
		return "", fmt.Errorf("mint: %w", err)
	}
	wire := jwtClaims{
		Topic:     c.Topic,
		Prefix:    c.Prefix,
		Scopes:    slices.Clone(c.Scopes),
		BookingID: c.BookingID,
		RegisteredClaims: jwt.RegisteredClaims{
			Audience:  jwt.ClaimStrings{c.Audience},
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			NotBefore: jwt.NewNumericDate(c.NotBefore),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, wire).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint: sign: %w", err)
	}
	return s, nil
}

// check holds c to what the relay requires of a token.
func (c Claims) check() error {
	switch {
	case c.Topic == "":
		return errors.New("empty topic")
	case c.BookingID == "":
		return errors.New("empty booking_id (the relay refuses it)")
	case c.Audience == "":
		return errors.New("empty audience (the access base URL)")
	case len(c.Scopes) == 0:
		return errors.New("no scopes")
	case c.IssuedAt.IsZero() || c.NotBefore.IsZero() || c.ExpiresAt.IsZero():
		return errors.New("iat, nbf and exp are all required")
	case !c.ExpiresAt.After(c.NotBefore):
		return errors.New("exp must be after nbf")
	}
	for _, s := range c.Scopes {
		if s != ScopeRead && s != ScopeWrite {
			return fmt.Errorf("unknown scope %q (want %s or %s)", s, ScopeRead, ScopeWrite)
		}
	}
	return nil
}

// ParseUnverified reads a token's claims without the secret, which lablog
// does not have on the device: enough to know the topic, the relay and the
// expiry, not to trust them. The relay verifies the signature. Errors wrap
// ErrMalformed and never quote the token.
func ParseUnverified(token string) (Claims, error) {
	token = strings.TrimSpace(token)
	var wire jwtClaims
	t, _, err := jwt.NewParser().ParseUnverified(token, &wire)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %s", ErrMalformed, jwtReason(token, err))
	}
	if alg, _ := t.Header["alg"].(string); alg != jwt.SigningMethodHS256.Alg() {
		return Claims{}, fmt.Errorf("%w: signed with %q, the relay wants HS256", ErrMalformed, alg)
	}
	c := Claims{
		Topic:     wire.Topic,
		Prefix:    wire.Prefix,
		Scopes:    wire.Scopes,
		BookingID: wire.BookingID,
		IssuedAt:  numericTime(wire.IssuedAt),
		NotBefore: numericTime(wire.NotBefore),
		ExpiresAt: numericTime(wire.ExpiresAt),
	}
	if len(wire.Audience) > 0 {
		c.Audience = wire.Audience[0]
	}
	if c.Topic == "" || c.ExpiresAt.IsZero() {
		return Claims{}, fmt.Errorf("%w: no topic or no expiry", ErrMalformed)
	}
	return c, nil
}

// jwtReason says what is wrong with a token the library rejected, in our
// words: the library's may echo input, and "malformed" does not say which
// part is.
func jwtReason(token string, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return malformedReason(token)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unknown signing method"
	}
	return "cannot decode its claims"
}

// malformedReason finds the first thing wrong with a token's shape: the
// number of dot-separated parts, or a header or claims part that is not
// base64url or does not decode to a JSON object. It never quotes the token.
func malformedReason(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Sprintf("not a JWT: want three parts separated by dots, got %d", len(parts))
	}
	for i, name := range []string{"header", "claims"} {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil {
			return fmt.Sprintf("not a JWT: its %s (part %d of 3) is not base64url", name, i+1)
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fmt.Sprintf("not a JWT: its %s (part %d of 3) is base64url but not a JSON object", name, i+1)
		}
	}
	return "not a JWT: its claims do not have the expected types"
}

func numericTime(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.UTC()
}

// Can reports whether the claims grant scope.
func (c Claims) Can(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Expired reports whether the token has expired at now.
func (c Claims) Expired(now time.Time) bool { return !now.Before(c.ExpiresAt) }

// LogTopic is the logging topic of a lab device's stream: spin30 -> spin30-log.
func LogTopic(stream string) string { return stream + "-log" }

// AccessURL is the access endpoint of topic on the relay whose access base
// URL is base: https://relay-access.practable.io + spin30-log ->
// https://relay-access.practable.io/session/spin30-log.
func AccessURL(base, topic string) string {
	return strings.TrimRight(base, "/") + "/" + Prefix + "/" + topic
}

// SplitAccessURL is the inverse of AccessURL: the base and the topic.
func SplitAccessURL(access string) (base, topic string, err error) {
	i := strings.LastIndex(access, "/"+Prefix+"/")
	if i < 0 {
		return "", "", fmt.Errorf("access URL %s does not end in /%s/<topic>", redact(access), Prefix)
	}
	base, topic = access[:i], access[i+len(Prefix)+2:]
	if base == "" || topic == "" || strings.ContainsAny(topic, "/?#") {
		return "", "", fmt.Errorf("access URL %s does not end in /%s/<topic>", redact(access), Prefix)
	}
	return base, topic, nil
}

// SameBase compares two access base URLs, ignoring a trailing slash.
func SameBase(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}
