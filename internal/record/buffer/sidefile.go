package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/practable/lablog/internal/platform/atomicfile"
)

// SideFile is a bbolt file of derived state that a consumer of the records
// keeps next to the buffer (<buffer>.<name>): the analytics store. It has
// its own write lock, so the writer's commits never wait for it, and it is
// never fsynced: a crash of lablog loses nothing (the kernel holds what was
// written), and after a power cut, when the unsynced file may be torn, it
// is deleted at open and the consumer starts again (OpenSide reports it).
// It closes with the buffer.
type SideFile struct {
	bolt   *bolt.DB
	path   string
	marker string // holds the boot id while the file is open
}

// bootID tells boots apart: a marker left by another boot means the file
// was open at a power cut (or a reset).
func bootID() []byte {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil
	}
	return bytes.TrimSpace(b)
}

// OpenSide opens the side file name, created if missing. fresh says the
// file is new: never made, or deleted because it was open at a power cut.
func (d *DB) OpenSide(name string) (f *SideFile, fresh bool, err error) {
	f = &SideFile{path: d.path + "." + name}
	f.marker = f.path + ".open"
	boot := bootID()
	if old, err := os.ReadFile(f.marker); err == nil && (len(boot) == 0 || !bytes.Equal(old, boot)) {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("side %s: dropping after a power cut: %w", f.path, err)
		}
	}
	_, serr := os.Stat(f.path)
	fresh = errors.Is(serr, os.ErrNotExist)
	if err := writeMarker(f.marker, boot); err != nil {
		return nil, false, err
	}
	f.bolt, err = bolt.Open(f.path, 0o600, sideOptions())
	if err != nil && !errors.Is(err, bolterrors.ErrTimeout) {
		// Torn or damaged: derived data, start again.
		_ = os.Remove(f.path)
		fresh = true
		f.bolt, err = bolt.Open(f.path, 0o600, sideOptions())
	}
	if err != nil {
		return nil, false, fmt.Errorf("side %s: %w", f.path, err)
	}
	d.mu.Lock()
	d.sides = append(d.sides, f)
	d.mu.Unlock()
	return f, fresh, nil
}

// sideOptions opens a side file without fsyncs. Its freelist is written
// with each commit (no fsync either): without it bbolt rebuilds the
// freelist at every open by walking the whole file, which read every page
// (a store of 2M records: 113 MiB more resident at start) and checked the
// tree on every start of the daemon and of lablog compact.
func sideOptions() *bolt.Options {
	return &bolt.Options{Timeout: time.Second, NoSync: true, NoGrowSync: true, FreelistType: bolt.FreelistMapType}
}

// writeMarker is the one fsync of a side file: the marker, name included
// (a new one's folder entry), must be on disk before anything unsynced is
// written to the file it guards.
func writeMarker(path string, boot []byte) error {
	if err := atomicfile.WriteFile(path, boot, 0o600); err != nil {
		return fmt.Errorf("side marker: %w", err)
	}
	return nil
}

// close closes the file; the marker goes only once it is closed, so a
// power cut after that leaves nothing to distrust.
func (f *SideFile) close() error {
	if err := f.bolt.Close(); err != nil {
		return fmt.Errorf("side %s: close: %w", f.path, err)
	}
	if err := os.Remove(f.marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("side %s: %w", f.path, err)
	}
	return nil
}

// Update runs fn in a write transaction on the bucket name (created if
// missing).
func (f *SideFile) Update(name string, fn func(*bolt.Bucket) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = f.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		defer releaseMap(tx) // the state grows with the records: keep its pages out of RSS
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("side %s: %s: %w", f.path, name, err)
	}
	return nil
}

// View runs fn in a read transaction on the bucket name; b is nil when it
// does not exist yet.
func (f *SideFile) View(name string, fn func(b *bolt.Bucket) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = f.bolt.View(func(tx *bolt.Tx) error {
		defer releaseMap(tx)
		return fn(tx.Bucket([]byte(name)))
	})
	if err != nil {
		return fmt.Errorf("side %s: %s: %w", f.path, name, err)
	}
	return nil
}

// Drop deletes the bucket name and everything in it.
func (f *SideFile) Drop(name string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = f.bolt.Update(func(tx *bolt.Tx) error {
		err := tx.DeleteBucket([]byte(name))
		if errors.Is(err, bolterrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("side %s: drop %s: %w", f.path, name, err)
	}
	return nil
}

// RemoveSide deletes the side file name of the buffer at path, as a power
// cut would have it deleted: its consumer starts again from the records
// at the next OpenSide. Only with the buffer closed and locked out (no
// lablog running on it).
func RemoveSide(path, name string) error {
	for _, p := range []string{path + "." + name, path + "." + name + ".open"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("side %s: %w", p, err)
		}
	}
	return nil
}
