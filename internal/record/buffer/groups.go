package buffer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group is what the compactor archives as one file: the records of one
// stream and hour with one identity (this buffer's id, or the legacy
// identity of records migrated from format 1).
type Group struct {
	BufferID string // "" for records migrated from a format-1 buffer
	Stream   string
	Hour     time.Time
	Records  int64 // from the running counts
	Bytes    int64 // stored bytes
}

func (g Group) String() string {
	id := g.BufferID
	if id == "" {
		id = "legacy"
	}
	return fmt.Sprintf("%s %s (%s)", g.Stream, g.Hour.UTC().Format("2006-01-02T15"), id)
}

// groupKey names a group in maps and in the counts bucket.
type groupKey struct {
	legacy bool
	stream string
	hour   int64 // Unix seconds
}

func (k groupKey) bytes() []byte {
	b := make([]byte, 0, 10+len(k.stream))
	b = append(b, 'b')
	if k.legacy {
		b[0] = 'l'
	}
	b = binary.BigEndian.AppendUint64(b, uint64(k.hour))
	return append(b, k.stream...)
}

func parseGroupKey(b []byte) (groupKey, bool) {
	if len(b) < 10 || (b[0] != 'b' && b[0] != 'l') {
		return groupKey{}, false
	}
	return groupKey{legacy: b[0] == 'l', hour: int64(binary.BigEndian.Uint64(b[1:])), stream: string(b[9:])}, true
}

func (d *DB) keyOf(g Group) groupKey {
	return groupKey{legacy: g.BufferID == "", stream: g.Stream, hour: g.Hour.Unix()}
}

func (d *DB) groupOf(k groupKey, records, bytes int64) Group {
	id := d.id
	if k.legacy {
		id = ""
	}
	return Group{BufferID: id, Stream: k.stream, Hour: time.Unix(k.hour, 0).UTC(), Records: records, Bytes: bytes}
}

// streamBucket is the bucket of a group's blocks, or nil.
func streamBucket(tx *bolt.Tx, k groupKey) *bolt.Bucket {
	top := blocksBucket
	if k.legacy {
		top = legacyBucket
	}
	return tx.Bucket(top).Bucket([]byte(k.stream))
}

// ledger collects changes to the counts during one transaction.
type ledger map[groupKey][2]int64 // records, bytes

func (l ledger) add(k groupKey, records, bytes int64) {
	v := l[k]
	l[k] = [2]int64{v[0] + records, v[1] + bytes}
}

// write applies the changes to the counts bucket and returns the change of
// the stored bytes.
func (l ledger) write(tx *bolt.Tx) (int64, error) {
	counts := tx.Bucket(countsBucket)
	var used int64
	for k, delta := range l {
		key := k.bytes()
		var cur [2]int64
		if v := counts.Get(key); len(v) == 16 {
			cur = [2]int64{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}
		}
		next := [2]int64{cur[0] + delta[0], cur[1] + delta[1]}
		used += next[1] - cur[1]
		if next[0] <= 0 && next[1] <= 0 {
			if err := counts.Delete(key); err != nil {
				return 0, err
			}
			used -= next[1] // whatever was left is gone with the entry
			continue
		}
		v := binary.BigEndian.AppendUint64(nil, uint64(next[0]))
		if err := counts.Put(key, binary.BigEndian.AppendUint64(v, uint64(next[1]))); err != nil {
			return 0, err
		}
	}
	return used, nil
}

func (d *DB) addUsed(n int64) {
	d.mu.Lock()
	d.used += n
	d.mu.Unlock()
}

// loadCounts sums the counts at Open.
func (d *DB) loadCounts() error {
	var used int64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(countsBucket).ForEach(func(_, v []byte) error {
			if len(v) == 16 {
				used += int64(binary.BigEndian.Uint64(v[8:]))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("buffer %s: counts: %w", d.path, err)
	}
	d.mu.Lock()
	d.used = used
	d.mu.Unlock()
	return nil
}

// Groups lists every group with records, legacy ones first, then by hour
// and stream. It seeks from hour to hour through the blocks rather than
// trusting the counts alone, so a block whose key was damaged still shows
// up (in a group of its own) and is dealt with.
func (d *DB) Groups() ([]Group, error) {
	var out []Group
	err := d.bolt.View(func(tx *bolt.Tx) error {
		counts := tx.Bucket(countsBucket)
		for _, legacy := range []bool{true, false} {
			top := tx.Bucket(blocksBucket)
			if legacy {
				top = tx.Bucket(legacyBucket)
			}
			err := top.ForEachBucket(func(name []byte) error {
				c := top.Bucket(name).Cursor()
				for k, _ := c.First(); k != nil; {
					if len(k) != keyLen {
						k, _ = c.Next()
						continue
					}
					hour, _ := splitKey(k)
					gk := groupKey{legacy: legacy, stream: string(name), hour: hour.Unix()}
					var n [2]int64
					if v := counts.Get(gk.bytes()); len(v) == 16 {
						n = [2]int64{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}
					}
					out = append(out, d.groupOf(gk, n[0], n[1]))
					k, _ = c.Seek(blockKey(hour.Add(time.Hour), 0))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer groups: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.BufferID == "") != (b.BufferID == "") {
			return a.BufferID == ""
		}
		if !a.Hour.Equal(b.Hour) {
			return a.Hour.Before(b.Hour)
		}
		return a.Stream < b.Stream
	})
	return out, nil
}

// Pending describes what one stream has waiting in the buffer.
type Pending struct {
	Stream  string
	Records int
	Oldest  time.Time // hour of the oldest record
}

// Pending reports, per stream, how many records wait for the archive, from
// the running counts (no walk of the file).
func (d *DB) Pending() ([]Pending, error) {
	by := map[string]*Pending{}
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(countsBucket).ForEach(func(k, v []byte) error {
			gk, ok := parseGroupKey(k)
			if !ok || len(v) != 16 {
				return nil
			}
			p := by[gk.stream]
			if p == nil {
				p = &Pending{Stream: gk.stream}
				by[gk.stream] = p
			}
			p.Records += int(binary.BigEndian.Uint64(v))
			if h := time.Unix(gk.hour, 0).UTC(); p.Oldest.IsZero() || h.Before(p.Oldest) {
				p.Oldest = h
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("buffer pending: %w", err)
	}
	out := make([]Pending, 0, len(by))
	for _, p := range by {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out, nil
}

// inGroup reports whether block key k belongs to the hour of gk.
func inGroup(k []byte, gk groupKey) bool {
	return len(k) == keyLen && bytes.Equal(k[:8], blockKey(time.Unix(gk.hour, 0), 0)[:8])
}

// LastSeqs returns the last seq given out in every stream whose name starts
// with prefix: what a reader following those streams has yet to see. The
// seqs are committed with the records, so every seq up to one returned here
// is in the buffer or was archived from it.
func (d *DB) LastSeqs(prefix string) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := d.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(seqsBucket).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			if len(v) == 8 {
				out[string(k)] = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer last seqs: %w", err)
	}
	return out, nil
}
