package relay

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("s3cret-that-must-never-leak")

func testClaims() Claims {
	iat := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	return Claims{
		Topic:     "spin30-log",
		Scopes:    []string{ScopeRead},
		BookingID: "lablog-spin30-log",
		Audience:  "https://relay-access.practable.io",
		IssuedAt:  iat,
		NotBefore: iat,
		ExpiresAt: iat.Add(8760 * time.Hour),
	}
}

// The minted token verifies the way the relay verifies it: with the
// library, the secret and HS256, and carries exactly the claims given.
func TestMintVerifiesIndependently(t *testing.T) {
	c := testClaims()
	tok, err := Mint(testSecret, c)
	if err != nil {
		t.Fatal(err)
	}
	var got jwt.MapClaims
	parsed, err := jwt.ParseWithClaims(tok, &got, func(tk *jwt.Token) (any, error) { return testSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(c.Audience),
		jwt.WithTimeFunc(func() time.Time { return c.IssuedAt.Add(time.Hour) }), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil || !parsed.Valid {
		t.Fatalf("verify: %v", err)
	}
	if parsed.Header["alg"] != "HS256" || parsed.Header["typ"] != "JWT" {
		t.Fatalf("header %v", parsed.Header)
	}
	want := jwt.MapClaims{
		"topic":      "spin30-log",
		"prefix":     "session",
		"scopes":     []any{"read"},
		"booking_id": "lablog-spin30-log",
		"aud":        []any{"https://relay-access.practable.io"},
		"iat":        float64(c.IssuedAt.Unix()),
		"nbf":        float64(c.NotBefore.Unix()),
		"exp":        float64(c.ExpiresAt.Unix()),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims\n got %v\nwant %v", got, want)
	}
	// The wrong secret does not verify.
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte("other"), nil },
		jwt.WithTimeFunc(func() time.Time { return c.IssuedAt })); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("wrong secret: %v", err)
	}
	if strings.Contains(tok, string(testSecret)) {
		t.Fatal("the token contains the secret")
	}
}

func TestMintRefusesWhatTheRelayRefuses(t *testing.T) {
	for name, f := range map[string]func(*Claims){
		"no topic":      func(c *Claims) { c.Topic = "" },
		"no booking id": func(c *Claims) { c.BookingID = "" },
		"no audience":   func(c *Claims) { c.Audience = "" },
		"no scopes":     func(c *Claims) { c.Scopes = nil },
		"odd scope":     func(c *Claims) { c.Scopes = []string{"admin"} },
		"no expiry":     func(c *Claims) { c.ExpiresAt = time.Time{} },
		"exp before nbf": func(c *Claims) {
			c.ExpiresAt = c.NotBefore.Add(-time.Second)
		},
	} {
		c := testClaims()
		f(&c)
		_, err := Mint(testSecret, c)
		if err == nil {
			t.Errorf("%s: minted", name)
			continue
		}
		if strings.Contains(err.Error(), string(testSecret)) {
			t.Errorf("%s: error %q holds the secret", name, err)
		}
	}
	if _, err := Mint(nil, testClaims()); err == nil {
		t.Error("minted with no secret")
	}
}

func TestParseUnverified(t *testing.T) {
	c := testClaims()
	c.Scopes = []string{ScopeRead, ScopeWrite}
	tok, err := Mint(testSecret, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseUnverified("  " + tok + "\n") // as read from a file
	if err != nil {
		t.Fatal(err)
	}
	c.Prefix = Prefix
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("got %+v\nwant %+v", got, c)
	}
	if !got.Can(ScopeRead) || !got.Can(ScopeWrite) || got.Expired(c.ExpiresAt.Add(-time.Second)) || !got.Expired(c.ExpiresAt) {
		t.Fatal("Can or Expired wrong")
	}

	// A token signed with another algorithm, one without a topic, and text
	// that is no JWT at all: each is malformed, and the error does not
	// quote the token.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwtClaims{Topic: "t",
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now())}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noTopic, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now())}}).SignedString(testSecret)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`))
	for name, bad := range map[string]string{
		"alg none":   none,
		"no topic":   noTopic,
		"garbage":    "secret-looking-garbage",
		"bad claims": header + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"topic":5}`)) + ".c2ln",
		"empty":      "",
	} {
		_, err := ParseUnverified(bad)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("%s: error %q quotes the token", name, err)
		}
	}
}

// Tokens made by the relay's own tool put aud as a list; older ones as a
// plain string. Both read the same.
func TestParseUnverifiedAudienceString(t *testing.T) {
	payload, _ := json.Marshal(map[string]any{"topic": "spin30-log", "prefix": "session", "scopes": []string{"read"},
		"booking_id": "b", "aud": "https://relay-access.practable.io", "exp": 2000000000})
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, rawClaims(payload)).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseUnverified(tok)
	if err != nil || c.Audience != "https://relay-access.practable.io" {
		t.Fatalf("aud %q, err %v", c.Audience, err)
	}
}

func rawClaims(payload []byte) jwt.MapClaims {
	var m jwt.MapClaims
	_ = json.Unmarshal(payload, &m)
	return m
}

func TestAccessURLs(t *testing.T) {
	if got := AccessURL("https://relay-access.practable.io/", "spin30-log"); got != "https://relay-access.practable.io/session/spin30-log" {
		t.Fatalf("AccessURL = %s", got)
	}
	base, topic, err := SplitAccessURL("https://app.practable.io/ed0/access/session/spin30-log")
	if err != nil || base != "https://app.practable.io/ed0/access" || topic != "spin30-log" {
		t.Fatalf("split: %q %q %v", base, topic, err)
	}
	for _, bad := range []string{"https://h/spin30-log", "https://h/session/", "https://h/session/a/b", "https://h/session/t?code=secret"} {
		if _, _, err := SplitAccessURL(bad); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("split %q: %v", bad, err)
		}
	}
	if LogTopic("spin30") != "spin30-log" || !SameBase("https://h/", "https://h") || SameBase("https://h", "https://g") {
		t.Fatal("LogTopic or SameBase")
	}
}

// A malformed token's error says what is wrong with it, never quoting it.
func TestMalformedTokenReasons(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	header := enc(`{"alg":"HS256","typ":"JWT"}`)
	for _, tc := range []struct{ token, want string }{
		{"abc.def", "want three parts separated by dots, got 2"},
		{"a.b.c.d", "want three parts separated by dots, got 4"},
		{"abc.def.ghi", "its header (part 1 of 3) is base64url but not a JSON object"},
		{"ab$c.def.ghi", "its header (part 1 of 3) is not base64url"},
		{header + ".d*f.ghi", "its claims (part 2 of 3) is not base64url"},
		{header + "." + enc("[1,2]") + ".ghi", "its claims (part 2 of 3) is base64url but not a JSON object"},
		{header + "." + enc(`{"exp":"soon"}`) + ".ghi", "its claims do not have the expected types"},
	} {
		_, err := ParseUnverified(tc.token)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.token) {
			t.Errorf("%s: %v, want %q", tc.token, err, tc.want)
		}
	}
}
