package relay

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/source"
)

const testBase = "https://relay-access.practable.io"

func TestWriteTokenFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	access := AccessURL(testBase, "spin30-log")
	if err := WriteTokenFiles(dir, "spin30", access, "tok.en.1"); err != nil {
		t.Fatal(err)
	}
	if err := WriteTokenFiles(dir, "spin30", access, "tok.en.2"); err != nil { // renewal replaces
		t.Fatal(err)
	}
	for path, want := range map[string]string{AccessFile(dir, "spin30"): access + "\n", TokenFile(dir, "spin30"): "tok.en.2\n"} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
		}
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("%s holds %q, want %q", path, got, want)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, want 0700", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("folder holds %d entries, want the two files and no temporaries", len(entries))
	}
	if filepath.Base(AccessFile(dir, "spin30")) != "log.access.spin30" || filepath.Base(TokenFile(dir, "spin30")) != "log.token.spin30" {
		t.Error("file names differ from the old scripts'")
	}
}

// blockedAs checks err is a *source.Blocked with state and text.
func blockedAs(t *testing.T, err error, state, text string) *source.Blocked {
	t.Helper()
	var b *source.Blocked
	if !errors.As(err, &b) || b.TokenState != state || !strings.Contains(b.State, text) {
		t.Fatalf("err %v, want Blocked %s %q", err, state, text)
	}
	return b
}

func TestCredentialsLoad(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good := mint(t, testBase, "spin30-log", 48*time.Hour, ScopeRead)
	access := AccessURL(testBase, "spin30-log")
	c := Credentials{Stream: "spin30", AccessFile: AccessFile(dir, "spin30"), TokenFile: TokenFile(dir, "spin30")}

	_, err := c.Load(now)
	blockedAs(t, err, source.TokenInvalid, "no access URL: open "+AccessFile(dir, "spin30"))
	if err := WriteTokenFiles(dir, "spin30", access, good); err != nil {
		t.Fatal(err)
	}
	l, err := c.Load(now)
	if err != nil || l.Access != access || l.Token != good || l.Claims.Topic != "spin30-log" {
		t.Fatalf("Load = %+v, %v", l, err)
	}

	for _, tc := range []struct {
		name, token, state, text string
	}{
		// The text names the token's own expiry (whole seconds, taken when
		// mint ran, which may be a second after now): filled in below.
		{"expired", mint(t, testBase, "spin30-log", 30*time.Minute, ScopeRead), source.TokenExpired, ""},
		{"wrong topic", mint(t, testBase, "spin31-log", 48*time.Hour, ScopeRead), source.TokenWrongTopic, "token is for topic spin31-log, not spin30-log"},
		{"other relay", mint(t, "https://other.example", "spin30-log", 48*time.Hour, ScopeRead), source.TokenInvalid, "token is for relay https://other.example, not " + testBase},
		{"write only", mint(t, testBase, "spin30-log", 48*time.Hour, ScopeWrite), source.TokenInvalid, "token lacks the read scope"},
		{"garbage", "secret-garbage", source.TokenInvalid, "relay token unusable: malformed relay token"},
	} {
		if err := WriteTokenFiles(dir, "spin30", access, tc.token); err != nil {
			t.Fatal(err)
		}
		if tc.state == source.TokenExpired {
			cl, err := ParseUnverified(tc.token)
			if err != nil || cl.ExpiresAt.Before(now.Add(-31*time.Minute)) || cl.ExpiresAt.After(now.Add(-29*time.Minute)) {
				t.Fatalf("the expired token's claims: %+v, %v", cl, err)
			}
			tc.text = source.TokenExpiredState(cl.ExpiresAt)
		}
		_, err := c.Load(now)
		b := blockedAs(t, err, tc.state, tc.text)
		noSecrets(t, b, tc.token)
		if cl, err := ParseUnverified(tc.token); err == nil && !b.TokenExpiry.Equal(cl.ExpiresAt) {
			t.Errorf("%s: expiry %v, want the token's %v", tc.name, b.TokenExpiry, cl.ExpiresAt)
		}
	}
	// Renewed on disk: read at once, no restart.
	if err := WriteTokenFiles(dir, "spin30", access, good); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(now); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	// Inline values win over files.
	in := Credentials{Stream: "spin30", Access: access, Token: " " + good + "\n", TokenFile: "/nonexistent"}
	if _, err := in.Load(now); err != nil {
		t.Fatalf("inline: %v", err)
	}
	_ = os.WriteFile(TokenFile(dir, "spin30"), []byte("\n"), 0o600)
	_, err = c.Load(now)
	blockedAs(t, err, source.TokenInvalid, "is empty")
}

func TestDirectAndWatch(t *testing.T) {
	r := newRelay(t)
	dir := t.TempDir()
	tok := mint(t, r.URL(), "spin30-log", 48*time.Hour, ScopeRead)
	cl, _ := ParseUnverified(tok)
	exp := cl.ExpiresAt
	if err := WriteTokenFiles(dir, "spin30", r.AccessURL("spin30-log"), tok); err != nil {
		t.Fatal(err)
	}
	c := Credentials{Stream: "spin30", Access: r.AccessURL("spin30-log"), TokenFile: TokenFile(dir, "spin30")}
	target, err := Direct(c, nil, nil)(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(target.URL, "/session/spin30-log?code=") || !target.TokenExpiry.Equal(exp) {
		t.Fatalf("target %+v, want a code URI expiring %v", target, exp)
	}
	w, err := Watch(c, nil)(ctx(t))
	if err != nil || w.URL != "" || !w.TokenExpiry.Equal(exp) {
		t.Fatalf("Watch = %+v, %v", w, err)
	}
	// Checked before any request: an expired file never reaches the relay.
	before := r.Answers(401)
	if err := WriteTokenFiles(dir, "spin30", r.AccessURL("spin30-log"), mint(t, r.URL(), "spin30-log", time.Minute, ScopeRead)); err != nil {
		t.Fatal(err)
	}
	_, err = Direct(c, nil, nil)(ctx(t))
	blockedAs(t, err, source.TokenExpired, "token expired at")
	_, err = Watch(c, nil)(ctx(t))
	blockedAs(t, err, source.TokenExpired, "token expired at")
	if r.Answers(401) != before {
		t.Fatal("an expired token was sent to the relay")
	}
	// The relay's own verdicts: another topic is a stop, a refusal a retry.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.WriteHeader(401)
		if strings.HasSuffix(req.URL.Path, "spin30-log") {
			_, _ = w.Write([]byte(`"Token Wrong Topic"`))
		}
	}))
	defer srv.Close()
	odd := Credentials{Stream: "spin30", Access: AccessURL(srv.URL, "spin30-log"), Token: mint(t, srv.URL, "spin30-log", 48*time.Hour, ScopeRead)}
	_, err = Direct(odd, nil, nil)(ctx(t))
	blockedAs(t, err, source.TokenWrongTopic, "the relay says the token is for another topic")
	odd = Credentials{Stream: "spin31", Access: AccessURL(srv.URL, "spin31-log"), Token: mint(t, srv.URL, "spin31-log", 48*time.Hour, ScopeRead)}
	_, err = Direct(odd, nil, nil)(ctx(t))
	var b *source.Blocked
	if errors.As(err, &b) || !errors.Is(err, ErrDenied) {
		t.Fatalf("plain refusal: %v, want a denial to retry", err)
	}
}

// The source warns once per token: Watch and Direct name the token by a
// fingerprint that changes with the file's content, not with each read.
func TestTargetTokenIDFollowsContent(t *testing.T) {
	r := newRelay(t)
	dir := t.TempDir()
	c := Credentials{Stream: "spin30", AccessFile: AccessFile(dir, "spin30"), TokenFile: TokenFile(dir, "spin30")}
	write := func(tok string) {
		if err := WriteTokenFiles(dir, "spin30", r.AccessURL("spin30-log"), tok); err != nil {
			t.Fatal(err)
		}
	}
	id := func() string {
		tw, err := Watch(c, nil)(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		td, err := Direct(c, nil, nil)(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if tw.TokenID == "" || tw.TokenID != td.TokenID {
			t.Fatalf("Watch %q, Direct %q", tw.TokenID, td.TokenID)
		}
		return tw.TokenID
	}
	a := mint(t, r.URL(), "spin30-log", 48*time.Hour, ScopeRead)
	write(a)
	first := id()
	if again := id(); again != first {
		t.Fatalf("same file, ids %q then %q", first, again)
	}
	write(mint(t, r.URL(), "spin30-log", 48*time.Hour, ScopeRead, ScopeWrite)) // same expiry, new token
	if renewed := id(); renewed == first {
		t.Fatal("a new token has the old id")
	}
	if strings.Contains(first, a) || len(first) > 32 {
		t.Fatalf("id %q is no fingerprint", first)
	}
}

// A token file others may read or change is refused, naming the file, its
// mode and the fix; the access URL beside it is no secret and may be 0644.
func TestCredentialsLoadRefusesSharedTokenFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := WriteTokenFiles(dir, "spin30", AccessURL(testBase, "spin30-log"), mint(t, testBase, "spin30-log", 48*time.Hour, ScopeRead)); err != nil {
		t.Fatal(err)
	}
	c := Credentials{Stream: "spin30", AccessFile: AccessFile(dir, "spin30"), TokenFile: TokenFile(dir, "spin30")}
	if err := os.Chmod(c.AccessFile, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o600, 0o640} {
		os.Chmod(c.TokenFile, mode)
		if _, err := c.Load(now); err != nil {
			t.Fatalf("token file mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o666, 0o644, 0o604, 0o660} {
		os.Chmod(c.TokenFile, mode)
		_, err := c.Load(now)
		blockedAs(t, err, source.TokenInvalid, fmt.Sprintf("%s: mode %04o lets others read or change it: chmod 600 %s", c.TokenFile, mode, c.TokenFile))
	}
}
