package buffer

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/record/frame"
)

// Format 1 (lablog up to the durable-core redesign) kept one key per record
// in streams/<stream>: hour(8)|seq(8) -> version(1)=1 kind(1) flags(1)
// received-ns(8) data. migrateV1 moves those records into legacy blocks, a
// chunk per transaction (a power cut mid-way resumes where it stopped, and
// no record is ever in both places), then drops the old bucket. Migrated
// records keep their seqs and the legacy identity, which is exactly how the
// archive files that format 1 already published name them, so a publish
// that format 1 did not get to settle is recognised by its content.
const (
	v1Header  = 11
	v1Version = 1
	v1Chunk   = 8192
)

func (d *DB) migrateV1() error {
	for {
		moved, done, err := d.migrateChunk()
		d.migrated += moved
		if err != nil {
			return err
		}
		if done {
			if d.migrated > 0 {
				d.log.Warn("converted a format-1 buffer; its records keep their seqs and are archived under the legacy identity",
					"records", d.migrated)
			}
			return nil
		}
	}
}

// migrateChunk moves up to v1Chunk records of one stream.
func (d *DB) migrateChunk() (moved int64, done bool, err error) {
	var aside []Damaged
	var asideStream string
	err = d.update(func(tx *bolt.Tx) error {
		old := tx.Bucket(v1Bucket)
		if old == nil {
			done = true
			return nil
		}
		var stream []byte
		_ = old.ForEachBucket(func(name []byte) error {
			if stream == nil {
				stream = append([]byte(nil), name...)
			}
			return nil
		})
		if stream == nil {
			done = true
			return tx.DeleteBucket(v1Bucket)
		}
		ob := old.Bucket(stream)
		seqs := tx.Bucket(seqsBucket)
		if cur := seqs.Get(stream); len(cur) != 8 || binary.BigEndian.Uint64(cur) < ob.Sequence() {
			if err := seqs.Put(stream, binary.BigEndian.AppendUint64(nil, ob.Sequence())); err != nil {
				return err
			}
		}
		nb, err := tx.Bucket(legacyBucket).CreateBucketIfNotExists(stream)
		if err != nil {
			return err
		}
		led := ledger{}
		var run []frame.Record
		var runHour time.Time
		var runFirst, runNext uint64
		flush := func() error {
			if len(run) == 0 {
				return nil
			}
			key := blockKey(runHour, runFirst)
			v := encodeBlock(key, run, zenc)
			led.add(groupKey{legacy: true, stream: string(stream), hour: runHour.Unix()}, int64(len(run)), int64(len(v)))
			run = run[:0]
			return nb.Put(key, v)
		}
		var keys [][]byte
		c := ob.Cursor()
		for k, v := c.First(); k != nil && len(keys) < v1Chunk; k, v = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
			if len(k) != keyLen || len(v) < v1Header || v[0] != v1Version {
				aside = append(aside, Damaged{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...),
					Records: 1, Err: fmt.Errorf("format-1 record of unknown shape: %w", ErrDamaged)})
				continue
			}
			hour, seq := splitKey(k)
			if len(run) > 0 && (hour != runHour || seq != runNext || len(run) >= v1Chunk/4) {
				if err := flush(); err != nil {
					return err
				}
			}
			if len(run) == 0 {
				runHour, runFirst = hour, seq
			}
			data := v[v1Header:]
			run = append(run, frame.Record{
				Stream:      string(stream),
				Kind:        frame.Kind(v[1]),
				ClockSynced: v[2]&flagClockSynced != 0,
				Received:    time.Unix(0, int64(binary.BigEndian.Uint64(v[3:]))).UTC(),
				Data:        append([]byte(nil), data...),
				Sum:         Sum(data),
			})
			runNext = seq + 1
			moved++
		}
		if err := flush(); err != nil {
			return err
		}
		if len(aside) > 0 {
			// Keep them for inspection, written before they leave the file.
			asideStream = string(stream)
			for _, dm := range aside {
				hour, _ := splitKey(dm.Key)
				g := Group{Stream: asideStream, Hour: hour}
				if err := writeSynced(d.asidePath(g, dm.Key), dm.Value); err != nil {
					return err
				}
			}
		}
		for _, k := range keys {
			if err := ob.Delete(k); err != nil {
				return err
			}
		}
		if len(keys) == 0 {
			if err := old.DeleteBucket(stream); err != nil {
				return err
			}
		}
		_, err = led.write(tx) // Open sums the counts afterwards
		return err
	})
	if err == nil && len(aside) > 0 {
		d.log.Error("format-1 records of unknown shape were set aside", logkey.Stream, asideStream, logkey.Records, len(aside),
			"dir", d.DamagedDir())
	}
	return moved, done, err
}
