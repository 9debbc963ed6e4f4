package privacy

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/practable/lablog/internal/platform/secretfile"
)

// KeySize is the size of a generated key: HMAC-SHA256's block of security.
const KeySize = 32

// LoadKey reads the key file at path: the key as hex on one line (a
// trailing newline allowed), at least KeySize bytes, in a file no one else
// may read (secretfile). A missing file is generated when create is set,
// and created reports it: lablog makes the key on the first start with
// pseudonymise on, so that no weak hand-made key is ever used, and writes
// it 0600 with O_EXCL, so an existing key is never replaced.
func LoadKey(path string, create bool) (key []byte, created bool, err error) {
	data, err := secretfile.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key, err = generate(path)
		return key, err == nil, err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("privacy key %s: missing: create one with: head -c %d /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s; chmod 600 %s", path, KeySize, path, path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("privacy key: %w", err)
	}
	key, err = hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, false, fmt.Errorf("privacy key %s: not hex: it must hold the key as hex digits on one line", path)
	}
	if len(key) < KeySize {
		return nil, false, fmt.Errorf("privacy key %s: %d bytes, want at least %d", path, len(key), KeySize)
	}
	return key, false, nil
}

// generate writes a new random key to path, durably.
func generate(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("privacy key: %w", err)
	}
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("privacy key %s: cannot create it (create it by hand, or give privacy.key_file a writable place): %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fail(err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return key, nil
}
