package buffer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// OpenReadOnly opens an existing format-2 buffer to read it (Groups, Scan,
// Pending) without changing it: nothing is created, converted or
// quarantined, and the file is only read. bbolt takes a shared lock, so
// while a lablog holds the buffer (run, compact) this fails at once with an
// error wrapping ErrLocked, and while it is open a lablog cannot start on
// it. A damaged or format-1 file is an error: opening it with Open (as
// lablog run does) repairs or converts it.
func OpenReadOnly(path string, opts Options) (d *DB, err error) {
	opts.setDefaults()
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	if err := validateFile(path); err != nil {
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	d = &DB{path: path, maxSize: opts.MaxSize, log: opts.Logger}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if d.bolt != nil {
				_ = d.bolt.Close()
			}
			d, err = nil, fmt.Errorf("buffer %s: corrupt: %v", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("buffer %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	d.bolt = db
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil || meta.Get(keyID) == nil {
			if tx.Bucket(v1Bucket) != nil {
				return fmt.Errorf("format 1: open it once with lablog run or compact to convert it")
			}
			return fmt.Errorf("not a lablog buffer (no meta bucket)")
		}
		if f := meta.Get(keyFormat); len(f) != 1 || f[0] != FormatVersion {
			return fmt.Errorf("buffer format %v, this lablog reads %d", f, FormatVersion)
		}
		for _, name := range [][]byte{seqsBucket, blocksBucket, legacyBucket, countsBucket} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing", name)
			}
		}
		d.id = hex.EncodeToString(meta.Get(keyID))
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	if err := d.loadCounts(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return d, nil
}
