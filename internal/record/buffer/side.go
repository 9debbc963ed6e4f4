package buffer

import (
	"errors"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrSideCorrupt is returned when reading or writing a side bucket hit
// damaged pages (bbolt panicked): the consumer should drop its state
// (DropSide) and start again rather than stop the recording.
var ErrSideCorrupt = errors.New("side bucket damaged")

// guard turns a panic inside bbolt (damaged pages: the structural check at
// Open does not read every value) into ErrSideCorrupt.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrSideCorrupt, r)
	}
}

// SidePrefix starts the name of every side bucket: state that a consumer of
// the records keeps in the buffer file (the analytics store), so that it
// commits atomically with what the consumer read. The buffer's own buckets
// never start with it.
const SidePrefix = "side:"

// UpdateSide runs fn in a write transaction on the side bucket name
// (created if missing). It never touches records, so the writer's commits
// only wait for it as for any bbolt transaction: keep fn short.
func (d *DB) UpdateSide(name string, fn func(*bolt.Bucket) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = d.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(SidePrefix + name))
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("buffer %s: side %s: %w", d.path, name, err)
	}
	return nil
}

// ViewSide runs fn in a read transaction on the side bucket name; b is nil
// when the bucket does not exist yet.
func (d *DB) ViewSide(name string, fn func(b *bolt.Bucket) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = d.bolt.View(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte(SidePrefix + name))) })
	if err != nil {
		return fmt.Errorf("buffer %s: side %s: %w", d.path, name, err)
	}
	return nil
}

// DropSide deletes the side bucket name and everything in it.
func (d *DB) DropSide(name string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = d.update(func(tx *bolt.Tx) error {
		err := tx.DeleteBucket([]byte(SidePrefix + name))
		if errors.Is(err, bolterrors.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("buffer %s: drop side %s: %w", d.path, name, err)
	}
	return nil
}
