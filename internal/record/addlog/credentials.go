package addlog

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/practable/lablog/internal/platform/secretfile"
)

// Credentials are the user:password pairs a UI may present as its Basic
// credential (the `la` of its page). Only their hashes are kept, so a
// comparison takes the same time whatever the guess.
type Credentials struct {
	pairs [][sha256.Size]byte
}

// LoadCredentials reads a credentials file: one user:password a line
// (blank lines and # comments allowed). It must not be readable by
// others, nor writable by its group (mode 0600, or 0640 for the service's
// group). Errors name the file and the line, never a value.
func LoadCredentials(path string) (Credentials, error) {
	fail := func(format string, args ...any) (Credentials, error) {
		return Credentials{}, fmt.Errorf("addlog credentials %s: "+format, append([]any{path}, args...)...)
	}
	lines, err := secretfile.ReadLines(path)
	if errors.Is(err, os.ErrNotExist) {
		return fail("missing: create it (mode 0600) with one user:password a line")
	}
	if err != nil {
		return fail("%v", err)
	}
	var c Credentials
	for _, l := range lines {
		user, pass, ok := strings.Cut(l.Text, ":")
		if !ok || user == "" || pass == "" {
			return fail("line %d: want user:password", l.N)
		}
		c.Add(user, pass)
	}
	if len(c.pairs) == 0 {
		return fail("no user:password line")
	}
	return c, nil
}

// Add accepts one more pair.
func (c *Credentials) Add(user, password string) {
	c.pairs = append(c.pairs, sha256.Sum256([]byte(user+":"+password)))
}

// Len is the number of pairs.
func (c Credentials) Len() int { return len(c.pairs) }

// Allow reports whether r carries one of the pairs as Basic credentials.
// Every pair is compared, in constant time, whichever matches.
func (c Credentials) Allow(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(user + ":" + pass))
	match := 0
	for _, p := range c.pairs {
		match |= subtle.ConstantTimeCompare(got[:], p[:])
	}
	return match == 1
}
