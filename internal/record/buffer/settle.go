package buffer

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/record/frame"
)

// FailBetweenSettleSteps is hit after each step of a settle that takes
// more than one transaction, before the next: a kill there leaves a
// settle half done, which the next Open finishes.
const FailBetweenSettleSteps = "buffer-between-settle-steps"

// settleStepBytes bounds the stored bytes one settle transaction removes.
// bbolt's commit reads the page of every leaf it frees, and the kernel maps
// the cached pages around each one it reads (fault-around), so a settle of
// a whole hour in one transaction made the process as large as the hour;
// in steps, the pages are released between commits, and the writer's
// commits go through between them too. A variable so tests can make steps
// small.
var settleStepBytes = 4 << 20

// keySettling prefixes a meta key (then the group key) whose value is the
// [first, last] of a settle that takes more than one step: written with its
// first step, removed with its last, so the settle is all or nothing as
// seen from outside: its records are already in the archive, and left in
// the buffer they
// would be archived a second time under another name. Open finishes one
// left by a crash, the compactor one left by a failed step (FinishSettles).
var keySettling = []byte("settling/")

func settlingKey(gk groupKey) []byte { return append(bytes.Clone(keySettling), gk.bytes()...) }

// Settle removes the records of g with a seq in [first, last], once they
// are safely in the archive. A block that reaches past last is cut there
// and its remainder kept. Damaged blocks are left alone (see SetAside).
// It returns how many records it removed.
func (d *DB) Settle(g Group, first, last uint64) (int64, error) {
	gk := d.keyOf(g)
	var removed int64
	for from, step := uint64(0), 0; ; step++ {
		n, next, err := d.settleStep(g, gk, first, last, from, step)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("buffer settle %s [%d,%d]: %w", g, first, last, err)
		}
		if next == 0 {
			break
		}
		if err := failpoint.Hit(FailBetweenSettleSteps); err != nil {
			return removed, fmt.Errorf("buffer settle %s [%d,%d]: %w", g, first, last, err)
		}
		from = next
	}
	d.freed.Add(1)
	return removed, nil
}

// settleStep removes the records of [first, last] in the blocks from seq
// from on, up to settleStepBytes of them. next is the seq of the block to
// go on from, or 0 when the settle is complete.
func (d *DB) settleStep(g Group, gk groupKey, first, last, from uint64, step int) (removed int64, next uint64, err error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	delete(d.tails, gk) // the blocks a tail names may change here
	var used int64
	err = d.update(func(tx *bolt.Tx) error {
		b := streamBucket(tx, gk)
		if b == nil {
			return nil
		}
		led := ledger{}
		type change struct {
			del  []byte
			put  []byte
			v    []byte
			recs int64
		}
		var changes []change
		// Drop the pages read every scanBytes, or the resident set grows
		// with the step.
		read, taken := 0, 0
		c := b.Cursor()
		for k, v := c.Seek(blockKey(g.Hour, from)); k != nil && inGroup(k, gk); k, v = c.Next() {
			if read += len(k) + len(v); read >= scanBytes {
				releaseMap(tx)
				read = 0
			}
			_, bf := splitKey(k)
			if bf > last {
				break
			}
			if taken >= settleStepBytes {
				next = bf // the rest in the next step
				break
			}
			n, ok := checkedCount(k, v)
			if !ok {
				continue
			}
			bl := bf + uint64(n) - 1
			if bl < first {
				continue
			}
			taken += len(v)
			ch := change{del: append([]byte(nil), k...)}
			lo, hi := max(first, bf)-bf, min(last, bl)-bf // indexes removed
			led.add(gk, -n, -int64(len(v)))
			ch.recs = int64(hi - lo + 1)
			changes = append(changes, ch)
			if lo == 0 && hi == bl-bf {
				continue // the whole block goes: no need to decode it
			}
			recs, err := decodeBlock(g.Stream, k, v)
			if err != nil {
				changes = changes[:len(changes)-1] // damaged inside: leave it to SetAside
				led.add(gk, n, int64(len(v)))
				continue
			}
			// Keep what lies outside [first, last] as blocks of their own.
			keep := func(from uint64, part []frame.Record) {
				nk := blockKey(g.Hour, from)
				nv := encodeBlock(nk, part, zenc)
				changes = append(changes, change{put: nk, v: nv})
				led.add(gk, int64(len(part)), int64(len(nv)))
			}
			if lo > 0 {
				keep(bf, recs[:lo])
			}
			if hi+1 < uint64(len(recs)) {
				keep(bf+hi+1, recs[hi+1:])
			}
		}
		// Apply after the walk: the cursor must not see its own changes.
		read = 0
		for _, ch := range changes {
			if ch.del != nil {
				if err := b.Delete(ch.del); err != nil {
					return err
				}
				removed += ch.recs
			}
			// The deletes read the leaves again, and with them (fault-
			// around) the values beside the keys.
			if read += len(ch.del) + len(ch.v); read >= scanBytes {
				releaseMap(tx)
				read = 0
			}
		}
		for _, ch := range changes {
			if ch.put != nil {
				if err := b.Put(ch.put, ch.v); err != nil {
					return err
				}
			}
		}
		if err := d.markSettling(tx, gk, first, last, step, next); err != nil {
			return err
		}
		var err error
		used, err = led.write(tx)
		releaseMap(tx)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	d.addUsed(used)
	return removed, next, nil
}

// markSettling keeps the settle's mark in step with its steps: set by a
// first step that leaves more to do, removed by the last (it is absent for
// a settle done in one step).
func (d *DB) markSettling(tx *bolt.Tx, gk groupKey, first, last uint64, step int, next uint64) error {
	meta := tx.Bucket(metaBucket)
	key := settlingKey(gk)
	switch {
	case next == 0:
		return meta.Delete(key)
	case step == 0:
		v := binary.BigEndian.AppendUint64(nil, first)
		return meta.Put(key, binary.BigEndian.AppendUint64(v, last))
	}
	return nil
}

// FinishSettles completes the settles a crash or a failed step cut short
// (see keySettling). Open calls it; so must whoever lists groups to archive
// after a Settle failed.
func (d *DB) FinishSettles() error {
	type pending struct {
		g           Group
		first, last uint64
	}
	var todo []pending
	err := d.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(metaBucket).Cursor()
		for k, v := c.Seek(keySettling); k != nil && bytes.HasPrefix(k, keySettling); k, v = c.Next() {
			gk, ok := parseGroupKey(k[len(keySettling):])
			if !ok || len(v) != 16 {
				return fmt.Errorf("unreadable settle mark %q", k)
			}
			todo = append(todo, pending{d.groupOf(gk, 0, 0), binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range todo {
		if _, err := d.Settle(p.g, p.first, p.last); err != nil {
			return fmt.Errorf("finishing a settle cut short: %w", err)
		}
	}
	return nil
}
