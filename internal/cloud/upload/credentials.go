package upload

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/practable/lablog/internal/platform/secretfile"
)

// Credentials are an S3 access key pair. String never shows the secret.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// String names the key without its secret, for logs.
func (c Credentials) String() string { return "access key " + maskKey(c.AccessKeyID) }

// GoString keeps %#v from printing the secret too.
func (c Credentials) GoString() string { return c.String() }

// maskKey shows a key's first four characters only: enough to tell keys apart.
func maskKey(k string) string {
	if len(k) <= 4 {
		return "****"
	}
	return k[:4] + "****"
}

// LoadCredentials reads a credentials file:
//
//	access_key_id: AKIA...
//	secret_access_key: ...
//
// (blank lines and # comments allowed). The file must pass secretfile.CheckMode.
// Errors name the file, the line and the key, never a value.
func LoadCredentials(path string) (Credentials, error) {
	fail := func(format string, args ...any) (Credentials, error) {
		return Credentials{}, fmt.Errorf("upload credentials %s: "+format, append([]any{path}, args...)...)
	}
	lines, err := secretfile.ReadLines(path)
	if errors.Is(err, os.ErrNotExist) {
		return fail("missing: create it (mode 0600) with the lines access_key_id: ... and secret_access_key: ...")
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("upload credentials: %w", err)
	}
	var c Credentials
	for _, l := range lines {
		key, value, ok := strings.Cut(l.Text, ":")
		if !ok {
			return fail("line %d: want key: value", l.N)
		}
		key, value = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(value), `"'`)
		switch key {
		case "access_key_id":
			c.AccessKeyID = value
		case "secret_access_key":
			c.SecretAccessKey = value
		default:
			return fail("line %d: unknown key %q (want access_key_id and secret_access_key)", l.N, key)
		}
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return fail("needs both access_key_id and secret_access_key")
	}
	return c, nil
}

// redactor removes the credentials from text that may echo a request.
type redactor []string

func newRedactor(c Credentials) redactor {
	var r redactor
	for _, s := range []string{c.SecretAccessKey, c.AccessKeyID} {
		if len(s) >= 4 {
			r = append(r, s)
		}
	}
	return r
}

func (r redactor) clean(s string) string {
	for _, secret := range r {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}
