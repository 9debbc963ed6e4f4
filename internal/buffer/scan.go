package buffer

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/frame"
)

// chunk bounds how many records one read or delete transaction handles, so a
// large backlog never pins memory or holds a transaction open for long.
const chunk = 4096

// Streams lists the streams that have buffered records, sorted.
func (d *DB) Streams() ([]string, error) {
	var names []string
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(streamsBucket).ForEachBucket(func(k []byte) error {
			if b := tx.Bucket(streamsBucket).Bucket(k); b.Stats().KeyN > 0 {
				names = append(names, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("buffer streams: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Hours lists the hours of stream that hold records, oldest first.
func (d *DB) Hours(stream string) ([]time.Time, error) {
	var hours []time.Time
	err := d.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(streamsBucket).Bucket([]byte(stream))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; {
			h, _ := splitKey(k)
			hours = append(hours, h)
			k, _ = c.Seek(makeKey(h.Add(time.Hour), 0))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer hours of %s: %w", stream, err)
	}
	return hours, nil
}

// Scan calls fn for every record of stream in hour, in sequence order. It
// reads in chunks of short transactions; records committed meanwhile with a
// later sequence number may be included.
func (d *DB) Scan(stream string, hour time.Time, fn func(seq uint64, r frame.Record) error) error {
	from := makeKey(hour, 0)
	end := makeKey(hour.Add(time.Hour), 0)
	for {
		type entry struct {
			seq uint64
			rec frame.Record
		}
		var batch []entry
		err := d.bolt.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(streamsBucket).Bucket([]byte(stream))
			if b == nil {
				return nil
			}
			c := b.Cursor()
			for k, v := c.Seek(from); k != nil && bytes.Compare(k, end) < 0 && len(batch) < chunk; k, v = c.Next() {
				_, seq := splitKey(k)
				r, err := decodeValue(stream, v)
				if err != nil {
					return err
				}
				batch = append(batch, entry{seq, r})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("buffer scan %s %s: %w", stream, hour.Format(time.RFC3339), err)
		}
		for _, e := range batch {
			if err := fn(e.seq, e.rec); err != nil {
				return err
			}
		}
		if len(batch) < chunk {
			return nil
		}
		from = makeKey(hour, batch[len(batch)-1].seq+1)
	}
}

// DeleteRange removes the records of stream in hour whose sequence numbers
// lie in [first, last], returning how many it removed.
func (d *DB) DeleteRange(stream string, hour time.Time, first, last uint64) (int, error) {
	total := 0
	for {
		n := 0
		err := d.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(streamsBucket).Bucket([]byte(stream))
			if b == nil {
				return nil
			}
			end := makeKey(hour, last)
			c := b.Cursor()
			for k, _ := c.Seek(makeKey(hour, first)); k != nil && bytes.Compare(k, end) <= 0 && n < chunk; k, _ = c.Seek(makeKey(hour, first)) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil {
			return total, fmt.Errorf("buffer delete %s %s [%d,%d]: %w", stream, hour.Format(time.RFC3339), first, last, err)
		}
		if n < chunk {
			return total, nil
		}
	}
}

// Pending describes what one stream has waiting in the buffer.
type Pending struct {
	Stream  string
	Records int
	Oldest  time.Time // hour of the oldest record
}

// Pending reports, per stream, how many records wait for the archive.
func (d *DB) Pending() ([]Pending, error) {
	var out []Pending
	err := d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(streamsBucket)
		return root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			n := b.Stats().KeyN
			if n == 0 {
				return nil
			}
			k, _ := b.Cursor().First()
			h, _ := splitKey(k)
			out = append(out, Pending{Stream: string(name), Records: n, Oldest: h})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("buffer pending: %w", err)
	}
	return out, nil
}

// HasRange reports whether any record of stream in hour has a sequence number
// in [first, last].
func (d *DB) HasRange(stream string, hour time.Time, first, last uint64) (bool, error) {
	found := false
	err := d.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(streamsBucket).Bucket([]byte(stream))
		if b == nil {
			return nil
		}
		k, _ := b.Cursor().Seek(makeKey(hour, first))
		found = k != nil && bytes.Compare(k, makeKey(hour, last)) <= 0
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("buffer %s: %w", stream, err)
	}
	return found, nil
}
