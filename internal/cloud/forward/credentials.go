package forward

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/practable/lablog/internal/platform/secretfile"
)

// LoadCredentials reads the upstream's Basic credential: one user:password
// line (blank lines and # comments aside), in a file only the service may
// read (secretfile). Errors name the file, never a value.
func LoadCredentials(path string) (user, password string, err error) {
	fail := func(format string, args ...any) (string, string, error) {
		return "", "", fmt.Errorf("forward credentials %s: "+format, append([]any{path}, args...)...)
	}
	lines, err := secretfile.ReadLines(path)
	if errors.Is(err, os.ErrNotExist) {
		return fail("missing: create it (mode 0600) with the upstream's user:password")
	}
	if err != nil {
		return fail("%v", err)
	}
	if len(lines) > 1 {
		return fail("line %d: more than one user:password line", lines[1].N)
	}
	for _, l := range lines {
		var ok bool
		if user, password, ok = strings.Cut(l.Text, ":"); !ok || user == "" || password == "" {
			return fail("line %d: want user:password", l.N)
		}
	}
	if user == "" {
		return fail("no user:password line")
	}
	return user, password, nil
}
