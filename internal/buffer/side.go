package buffer

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// SidePrefix starts the name of every side bucket: state that a consumer of
// the records keeps in the buffer file (the analytics store), so that it
// commits atomically with what the consumer read. The buffer's own buckets
// never start with it.
const SidePrefix = "side:"

// UpdateSide runs fn in a write transaction on the side bucket name
// (created if missing). It never touches records, so the writer's commits
// only wait for it as for any bbolt transaction: keep fn short.
func (d *DB) UpdateSide(name string, fn func(*bolt.Bucket) error) error {
	err := d.update(func(tx *bolt.Tx) error {
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
func (d *DB) ViewSide(name string, fn func(b *bolt.Bucket) error) error {
	err := d.bolt.View(func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte(SidePrefix + name))) })
	if err != nil {
		return fmt.Errorf("buffer %s: side %s: %w", d.path, name, err)
	}
	return nil
}
