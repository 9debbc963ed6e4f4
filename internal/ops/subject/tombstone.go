package subject

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TombstoneFile is the tombstone list's name in the data directory (the
// buffer's): one line per erased user, "sha256:<hex>" of the user id, so
// the list itself does not hold the ids in clear (anyone with a candidate
// id can still test it against the list).
const TombstoneFile = "tombstones"

// TombstonePath is the list's path for a buffer at bufferPath.
func TombstonePath(bufferPath string) string {
	return filepath.Join(filepath.Dir(bufferPath), TombstoneFile)
}

// Hash is how a user id appears in the tombstone list and the report.
func Hash(user string) string {
	h := sha256.Sum256([]byte(user))
	return "sha256:" + hex.EncodeToString(h[:])
}

// Tombstones is a loaded tombstone list.
type Tombstones map[string]bool

// LoadTombstones reads the list at path; a missing file is an empty list.
func LoadTombstones(path string) (Tombstones, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Tombstones{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tombstones: %w", err)
	}
	defer f.Close()
	t := Tombstones{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "sha256:") || len(line) != len("sha256:")+64 {
			return nil, fmt.Errorf("tombstones %s line %d: want sha256:<64 hex digits>, got %q", path, n, line)
		}
		t[line] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tombstones %s: %w", path, err)
	}
	return t, nil
}

// Matcher matches the users on the list; nil when the list is empty, so
// callers can skip filtering altogether.
func (t Tombstones) Matcher() Matcher {
	if len(t) == 0 {
		return nil
	}
	seen := map[string]bool{} // a few users recur across many rows
	return func(u string) bool {
		v, ok := seen[u]
		if !ok {
			v = t[Hash(u)]
			seen[u] = v
		}
		return v
	}
}

// AddTombstone appends user's hash to the list at path, durably, unless it
// is there already.
func AddTombstone(path, user string) error {
	t, err := LoadTombstones(path)
	if err != nil {
		return err
	}
	h := Hash(user)
	if t[h] {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("tombstones: %w", err)
	}
	if _, err := f.WriteString(h + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("tombstones: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("tombstones: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tombstones: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Check refuses an archive file that holds a row of a user on the list:
// for the uploader, so a file from before an erasure (an old drive plugged
// in, a copy put back) never reaches the bucket.
func (t Tombstones) Check(path string) error {
	m := t.Matcher()
	if m == nil {
		return nil
	}
	c, err := Count(path, m)
	if err != nil {
		return err
	}
	if c.Rows > 0 {
		return fmt.Errorf("it holds %d rows of erased users (tombstone list): run lablog subject erase again for each of them", c.Rows)
	}
	return nil
}
