package buffer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/platform/atomicfile"
	"github.com/practable/lablog/internal/record/frame"
)

// scanBytes bounds how much stored data one read transaction copies out, so
// a large backlog never pins memory or holds a transaction open for long.
// 1 MiB, not 4: the batch is live heap during a compaction, and the
// analytics catch-up copies up to one batch per 2000 records it takes.
var scanBytes = 1 << 20 // a variable so tests can make transactions small

// betweenScans, when set by a test, runs between Scan's transactions.
var betweenScans func()

// Damaged is a block whose checksum failed: it is never archived as
// genuine. The compactor sets it aside with SetAside.
type Damaged struct {
	Key     []byte
	Value   []byte // the stored bytes, as found
	Records int64  // what its header claims (it may be damaged too)
	Err     error
}

// Scan calls fn for every record of g with a seq in [first, last], in seq
// order, after checking its checksums. Damaged blocks are skipped and
// returned. It reads in short transactions; records committed meanwhile
// may be included. Each transaction goes on from the block that holds the
// next seq wanted, so blocks merged or cut in between never make it skip a
// record.
func (d *DB) Scan(g Group, first, last uint64, fn func(seq uint64, r frame.Record) error) ([]Damaged, error) {
	gk := d.keyOf(g)
	var damaged []Damaged
	next := first // the lowest seq not yet passed
	for more := true; more; {
		type stored struct{ k, v []byte }
		var batch []stored
		more = false
		err := d.bolt.View(func(tx *bolt.Tx) error {
			b := streamBucket(tx, gk)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			from := blockKey(g.Hour, next)
			k, v := c.Seek(from)
			if k == nil || !inGroup(k, gk) || seqOf(k) > next {
				// The block holding next, if any, starts before it.
				if pk, pv := c.Prev(); pk != nil && inGroup(pk, gk) {
					k, v = pk, pv
				} else {
					k, v = c.Seek(from)
				}
			}
			size := 0
			for ; k != nil && inGroup(k, gk) && seqOf(k) <= last; k, v = c.Next() {
				// Two blocks at least: the first may be the one before next
				// that ends short of it (a gap, a damaged block), and a
				// transaction that only saw it again would make no progress.
				if size >= scanBytes && len(batch) >= 2 {
					more = true
					break
				}
				batch = append(batch, stored{append([]byte(nil), k...), append([]byte(nil), v...)})
				size += len(v)
			}
			releaseMap(tx) // the batch is copied out
			return nil
		})
		if err != nil {
			return damaged, fmt.Errorf("buffer scan %s: %w", g, err)
		}
		for _, s := range batch {
			bf := seqOf(s.k)
			recs, err := decodeBlock(g.Stream, s.k, s.v)
			if err != nil {
				if bf >= next || len(damaged) == 0 || !bytes.Equal(damaged[len(damaged)-1].Key, s.k) {
					damaged = append(damaged, Damaged{Key: s.k, Value: s.v, Records: blockCount(s.v), Err: err})
				}
				next = max(next, bf+1)
				continue
			}
			for i, r := range recs {
				seq := bf + uint64(i)
				if seq < next || seq > last {
					continue
				}
				if err := fn(seq, r); err != nil {
					return damaged, err
				}
				next = seq + 1
			}
			next = max(next, bf+uint64(len(recs)))
		}
		if next > last {
			break
		}
		if betweenScans != nil {
			betweenScans()
		}
	}
	return damaged, nil
}

// ScanGroups scans every record of the groups keep accepts (every group
// when keep is nil), group by group in Groups' order, telling fn each
// record's group: for readers of a whole buffer. It returns how many
// damaged blocks it passed over; an error says the group it stopped in.
func (d *DB) ScanGroups(keep func(Group) bool, fn func(g Group, seq uint64, r frame.Record) error) (damaged int, err error) {
	groups, err := d.Groups()
	if err != nil {
		return 0, err
	}
	for _, g := range groups {
		if keep != nil && !keep(g) {
			continue
		}
		dm, err := d.Scan(g, 0, ^uint64(0), func(seq uint64, r frame.Record) error { return fn(g, seq, r) })
		if err != nil {
			return damaged, fmt.Errorf("buffer %s: %w", g, err)
		}
		damaged += len(dm)
	}
	return damaged, nil
}

func seqOf(k []byte) uint64 { _, s := splitKey(k); return s }

// DamagedDir is where SetAside keeps damaged blocks: next to the buffer.
func (d *DB) DamagedDir() string { return damagedDir(d.path) }

// damagedDir is the folder of what could not be archived from the buffer
// at path (or a file quarantined from it).
func damagedDir(path string) string { return filepath.Join(filepath.Dir(path), "damaged") }

// SetAside writes a damaged block's stored bytes to a file in DamagedDir
// (synced), then removes the block from the buffer, so it is kept for
// inspection but never archived as genuine. It returns the file's path.
func (d *DB) SetAside(g Group, dm Damaged) (string, error) {
	gk := d.keyOf(g)
	path := d.asidePath(g, dm.Key)
	if err := writeSynced(path, dm.Value); err != nil {
		return "", fmt.Errorf("buffer set aside %s: %w", g, err)
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	delete(d.tails, gk)
	var used int64
	err := d.update(func(tx *bolt.Tx) error {
		b := streamBucket(tx, gk)
		if b == nil {
			return nil
		}
		v := b.Get(dm.Key)
		if v == nil {
			return nil
		}
		led := ledger{}
		led.add(gk, -blockCount(v), -int64(len(v)))
		if err := b.Delete(dm.Key); err != nil {
			return err
		}
		var err error
		used, err = led.write(tx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("buffer set aside %s: %w", g, err)
	}
	d.freed.Add(1)
	d.addUsed(used)
	return path, nil
}

func (d *DB) asidePath(g Group, key []byte) string {
	id := g.BufferID
	if id == "" {
		id = "legacy"
	}
	return filepath.Join(d.DamagedDir(), fmt.Sprintf("%s-%s-%s-%x.block", g.Stream, g.Hour.UTC().Format("20060102T15"), id, key))
}

func writeSynced(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}
