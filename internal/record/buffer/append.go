package buffer

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/record/frame"
)

const (
	// maxBlockRaw bounds a block before compression, so decoding one never
	// needs much memory.
	maxBlockRaw = 256 << 10
	// mergeAt: once the small blocks at the end of a group hold this much,
	// or this many blocks, they are merged into one. 64 KiB of realistic
	// messages compresses about as well as a whole hour would.
	mergeAtBytes  = 64 << 10
	mergeAtBlocks = 256
	// maxMergesPerCommit bounds the extra work one commit does.
	maxMergesPerCommit = 4
)

// tail is the run of small, consecutive blocks at the end of a group, the
// candidates for the next merge. It lives in memory only: after a restart
// the old small blocks stay as they are, which costs a little space, never
// correctness.
type tail struct {
	keys [][]byte
	raw  int    // their records' data bytes
	next uint64 // the seq a block must start at to extend the run
}

// Append commits recs in one transaction: one fsync pair however many there
// are. Each record gets the next sequence number of its stream; each run of
// a stream's records in one hour becomes one block.
func (d *DB) Append(recs []frame.Record) error {
	if len(recs) == 0 {
		return nil
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.tails == nil {
		d.tails = map[groupKey]*tail{}
	}
	tails := map[groupKey]*tail{} // changed tails, applied after the commit
	var used int64
	// A full batch comes from a deep queue: the writer is behind, and
	// the faster level lets it catch up.
	z := zenc
	if len(recs) >= maxBatch {
		z = zfast
	}
	err := d.update(func(tx *bolt.Tx) error {
		led := ledger{}
		seqs := tx.Bucket(seqsBucket)
		for _, run := range runs(recs) {
			stream := run[0].Stream
			seq := uint64(0)
			if v := seqs.Get([]byte(stream)); len(v) == 8 {
				seq = binary.BigEndian.Uint64(v)
			}
			b, err := tx.Bucket(blocksBucket).CreateBucketIfNotExists([]byte(stream))
			if err != nil {
				return fmt.Errorf("stream %q: %w", stream, err)
			}
			b.FillPercent = 1.0 // keys are appended in order
			hour := frame.Hour(run[0].Received)
			gk := groupKey{stream: stream, hour: hour.Unix()}
			for _, chunk := range chunks(run) {
				for i := range chunk {
					if chunk[i].Sum == 0 {
						chunk[i].Sum = Sum(chunk[i].Data)
					}
				}
				key := blockKey(hour, seq+1)
				// A small block is stored raw: it is merged (and then
				// compressed) soon, and compressing it twice would cost
				// the writer more than its bytes cost the card.
				var zc *zstd.Encoder
				if dataBytes(chunk) >= mergeAtBytes {
					zc = z
				}
				v := encodeBlock(key, chunk, zc)
				if err := b.Put(key, v); err != nil {
					return fmt.Errorf("stream %q: %w", stream, err)
				}
				led.add(gk, int64(len(chunk)), int64(len(v)))
				seq += uint64(len(chunk))
				t := tails[gk]
				if t == nil {
					t = d.tails[gk]
				}
				tails[gk] = d.extendTail(t, key, seq, dataBytes(chunk))
			}
			if err := seqs.Put([]byte(stream), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
				return err
			}
		}
		// Many streams at one rate fill their tails together: merging them
		// all in one commit would stall it, so a few go per commit, the
		// fullest first (any tail of the buffer, not only this commit's).
		for _, gk := range d.mergeable(tails, maxMergesPerCommit) {
			t := tails[gk]
			if t == nil {
				t = d.tails[gk]
			}
			if err := mergeTail(tx, gk, t, led); err != nil {
				return err
			}
			tails[gk] = &tail{next: t.next}
		}
		var err error
		used, err = led.write(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("buffer commit: %w", err)
	}
	for gk, t := range tails {
		d.tails[gk] = t
	}
	d.addUsed(used)
	return nil
}

// mergeable picks up to n tails due for a merge, fullest first: the ones
// this commit changed (changed) over those already in d.tails.
func (d *DB) mergeable(changed map[groupKey]*tail, n int) []groupKey {
	type due struct {
		gk  groupKey
		raw int
	}
	var all []due
	consider := func(gk groupKey, t *tail) {
		if t != nil && (t.raw >= mergeAtBytes || len(t.keys) >= mergeAtBlocks) {
			all = append(all, due{gk, t.raw})
		}
	}
	for gk, t := range changed {
		consider(gk, t)
	}
	for gk, t := range d.tails {
		if _, ok := changed[gk]; !ok {
			consider(gk, t)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].raw > all[j].raw })
	out := make([]groupKey, 0, min(n, len(all)))
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].gk)
	}
	return out
}

// runs splits recs into runs of one stream and one hour, keeping each
// stream's order, so every run gets consecutive seqs.
func runs(recs []frame.Record) [][]frame.Record {
	var order []string
	by := map[string][]frame.Record{}
	for _, r := range recs {
		if _, ok := by[r.Stream]; !ok {
			order = append(order, r.Stream)
		}
		by[r.Stream] = append(by[r.Stream], r)
	}
	var out [][]frame.Record
	for _, s := range order {
		rs := by[s]
		start := 0
		for i := 1; i <= len(rs); i++ {
			if i == len(rs) || frame.Hour(rs[i].Received) != frame.Hour(rs[start].Received) {
				out = append(out, rs[start:i])
				start = i
			}
		}
	}
	return out
}

// chunks splits a run so that no block exceeds maxBlockRaw (one huge record
// still makes a block of its own).
func chunks(run []frame.Record) [][]frame.Record {
	var out [][]frame.Record
	start, size := 0, 0
	for i, r := range run {
		if i > start && size+len(r.Data) > maxBlockRaw {
			out = append(out, run[start:i])
			start, size = i, 0
		}
		size += len(r.Data)
	}
	return append(out, run[start:])
}

func dataBytes(recs []frame.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Data) + 16
	}
	return n
}

// extendTail returns t with the new block added, or a new tail starting at
// it when it does not continue t's run (a gap in seqs, or a big block).
func (d *DB) extendTail(t *tail, key []byte, last uint64, raw int) *tail {
	_, first := splitKey(key)
	if raw >= mergeAtBytes {
		return &tail{next: last + 1}
	}
	if t == nil || t.next != first {
		return &tail{keys: [][]byte{key}, raw: raw, next: last + 1}
	}
	return &tail{keys: append(t.keys[:len(t.keys):len(t.keys)], key), raw: t.raw + raw, next: last + 1}
}

// mergeTail replaces the tail's blocks by one. Anything unexpected (a block
// gone, damaged, or not following on) leaves the blocks as they are: merging
// is only an optimisation.
func mergeTail(tx *bolt.Tx, gk groupKey, t *tail, led ledger) error {
	if len(t.keys) < 2 {
		return nil
	}
	b := streamBucket(tx, gk)
	if b == nil {
		return nil
	}
	var all []frame.Record
	var old int64
	for _, k := range t.keys {
		v := b.Get(k)
		if v == nil {
			return nil
		}
		recs, err := decodeBlock(gk.stream, k, v)
		if err != nil {
			return nil
		}
		if _, first := splitKey(k); len(all) > 0 && first != seqAfter(t.keys[0], len(all)) {
			return nil
		}
		all = append(all, recs...)
		old += int64(len(v))
	}
	v := encodeBlock(t.keys[0], all, zenc)
	if err := b.Put(t.keys[0], v); err != nil {
		return err
	}
	for _, k := range t.keys[1:] {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	led.add(gk, 0, int64(len(v))-old)
	return nil
}

// seqAfter is the seq n records after the first of block key k.
func seqAfter(k []byte, n int) uint64 {
	_, first := splitKey(k)
	return first + uint64(n)
}
