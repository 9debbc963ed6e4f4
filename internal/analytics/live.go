package analytics

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/practable/lablog/internal/platform/atomicfile"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/retrylog"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/statement"
)

// Store keeps every graph up to date from the buffer as records commit,
// for `lablog run`. It reads what the writer has already committed (read
// transactions only) and keeps its state in its own file next to the
// buffer (buffer.SideFile "analytics", never fsynced), so the writer's
// commits neither wait for it nor fsync for it. The state: each graph's
// steps ordered by (t, received, stream, seq, part), feedback counts, the
// stats, and per buffer group (id, stream, hour) the last seq consumed. A
// batch of records and the marks that say they were consumed commit in one
// transaction of that file, so a kill at any moment loses nothing and
// counts nothing twice; at start the store catches up from the marks, and
// the compactor makes it catch up before it deletes records (BeforeSettle:
// a read, usually of nothing, as the store follows the commits). After a
// power cut the file may be torn: it is dropped and counted again from the
// buffer and, once, the archive (Seed).
type Store struct {
	db   *buffer.DB
	side *buffer.SideFile
	log  *slog.Logger
	opts Options

	mu     sync.Mutex // one catch-up at a time; guards dirty and broken
	dirty  map[Key]bool
	broken bool // the state is damaged and could not be dropped: off until restart

	catchUpFails retrylog.Run // failed catch-ups in a row, for the log; Run's goroutine only

	// Fresh's calls: asked counts them, served is the last call a
	// finished catch-up covers (under freshMu).
	freshMu     sync.Mutex
	freshAsked  atomic.Uint64
	freshServed uint64
}

const (
	storeBucket = "analytics"
	batchMax    = 2000 // records per transaction: short, so commits barely wait
)

var (
	marksBucket  = []byte("marks")
	firstsBucket = []byte("firsts") // until the seed: the first seq read of each group
	graphsBucket = []byte("graphs")
	stepsBucket  = []byte("s")
	fbBucket     = []byte("f")
	usageBucket  = []byte("u") // interaction name -> count
	startsBucket = []byte("h") // session starts, ordered as steps
	keyForeign   = []byte("x")
	keyStats     = []byte("stats")
	keySeeded    = []byte("seeded") // the archive was read (seed)
	keyFormat    = []byte("format") // what the state holds: formatNow
)

// ErrOff says there is no live store: analytics.live is off.
var ErrOff = errors.New("the live analytics store is off (analytics.live: false)")

// formatNow is the state's format: 2 added statements, usage counts and
// session starts. A state of another format is dropped at open and
// counted again, as a damaged one is.
const formatNow = "2"

// OpenStore opens the store kept beside db. Every graph is due for export.
func OpenStore(db *buffer.DB, o Options) (*Store, error) {
	if o.CatchUp <= 0 {
		o.CatchUp = 2 * time.Second
	}
	if o.Export <= 0 {
		o.Export = DefaultExport
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	dropInBuffer(db, log)
	side, fresh, err := db.OpenSide(storeBucket)
	if err != nil {
		return nil, fmt.Errorf("analytics store: %w", err)
	}
	if fresh {
		log.Info("analytics store: new; counting the buffer's records, and the archive's once the drive is usable")
	}
	s := &Store{db: db, side: side, log: log, opts: o, dirty: map[Key]bool{}, catchUpFails: retrylog.Run{Level: slog.LevelError}}
	err = s.dropOlder()
	if err == nil {
		err = s.side.View(storeBucket, func(b *bolt.Bucket) error {
			if b == nil || b.Bucket(graphsBucket) == nil {
				return nil
			}
			return b.Bucket(graphsBucket).ForEachBucket(func(k []byte) error {
				s.dirty[parseGraphKey(k)] = true
				return nil
			})
		})
	}
	if err != nil {
		s.mu.Lock()
		err = s.survive(err) // damage never stops lablog from starting
		s.mu.Unlock()
	}
	return s, err
}

// dropOlder drops a state an older version kept: it lacks what this
// version counts, so it is counted again from the buffer and the archive.
func (s *Store) dropOlder() error {
	older := false
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		older = b != nil && string(b.Get(keyFormat)) != formatNow
		return nil
	})
	if err != nil || !older {
		return err
	}
	s.log.Info("analytics store: kept by an older version of lablog; counting again from the buffer and the archive")
	return s.side.Drop(storeBucket)
}

// dropInBuffer deletes the state that older versions kept inside the
// buffer file (side bucket "analytics"): derived data whose transactions
// made the writer's commits wait. One transaction, once.
func dropInBuffer(db *buffer.DB, log *slog.Logger) {
	found := true // when it cannot be read, it is damaged: drop it too
	_ = db.ViewSide(storeBucket, func(b *bolt.Bucket) error { found = b != nil; return nil })
	if !found {
		return
	}
	if err := db.DropSide(storeBucket); err != nil {
		log.Error("analytics store: cannot drop the old state in the buffer; it stays, unused", logkey.Err, err)
		return
	}
	log.Info("analytics store: dropped the old state in the buffer (now kept beside it)")
}

func graphKey(k Key) []byte { return []byte(k.User + "\x00" + k.Exp + "\x00" + k.Course) }

func parseGraphKey(b []byte) Key {
	p := strings.SplitN(string(b), "\x00", 3)
	for len(p) < 3 {
		p = append(p, "")
	}
	return Key{User: p[0], Exp: p[1], Course: p[2]}
}

func markKey(g buffer.Group) []byte {
	k := binary.BigEndian.AppendUint64([]byte(g.BufferID+"\x00"+g.Stream+"\x00"), uint64(g.Hour.Unix()))
	return k
}

// sortable makes a signed number sort as its bytes do.
func sortable(n int64) uint64 { return uint64(n) ^ 1<<63 }

func stepKey(t, received int64, stream string, seq uint64, part int) []byte {
	k := make([]byte, 0, 28+len(stream)+1)
	k = binary.BigEndian.AppendUint64(k, sortable(t))
	k = binary.BigEndian.AppendUint64(k, sortable(received))
	k = append(k, stream...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, seq)
	return binary.BigEndian.AppendUint32(k, uint32(part))
}

type pending struct {
	seq uint64
	rec frame.Record
}

// CatchUp consumes every record committed since the last call (or since
// the marks, after a restart). It returns how many records it consumed.
// It locks one group at a time, so the compactor's BeforeSettle never waits
// for a long catch-up (after a restart on a large buffer) to end.
func (s *Store) CatchUp() (int, error) {
	n, _, err := s.catchUp(0)
	return n, err
}

// catchUp is CatchUp consuming at most about budget records (0: no
// limit); all says whether it consumed every record committed before.
func (s *Store) catchUp(budget int) (n int, all bool, err error) {
	groups, err := s.db.Groups()
	if err != nil {
		return 0, false, err
	}
	for _, g := range groups {
		limit := 0
		if budget > 0 {
			limit = max(budget-n, 1)
		}
		s.mu.Lock()
		k, more, err := s.catchUpGroup(g, ^uint64(0), limit)
		err = s.survive(err)
		s.mu.Unlock()
		n += k
		if err != nil || more {
			return n, false, err
		}
	}
	return n, true, s.pruneAfter()
}

// yieldEvery is how many records the periodic catch-up consumes between
// two looks at whether the writer is behind.
const yieldEvery = 5 * batchMax

// catchUpUnlessBehind is CatchUp in slices of yieldEvery records, stopping
// (all false) whenever behind says the writer is behind.
func (s *Store) catchUpUnlessBehind(behind func() bool) (n int, all bool, err error) {
	if behind == nil {
		return s.catchUp(0)
	}
	for !behind() {
		k, all, err := s.catchUp(yieldEvery)
		n += k
		if err != nil || all {
			return n, all, err
		}
	}
	return n, false, nil
}

// pruneAfter forgets the marks of groups gone from the buffer, once the
// archive is read.
func (s *Store) pruneAfter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return nil
	}
	// Marks are made only under mu: a group missing from a list taken
	// under mu has no records left, so its mark can go; until the archive
	// is read they say which of its rows were counted already.
	if seeded, err := s.Seeded(); err != nil || !seeded {
		return s.survive(err)
	}
	groups, err := s.db.Groups()
	if err != nil {
		return err
	}
	return s.survive(s.pruneMarks(groups))
}

// survive handles damage to the store's own state (bbolt pages no check
// at open reads): the state is dropped and rebuilt from the records still
// in the buffer and, at the next export, the archive (Seed), so the
// recording never waits for it. If even dropping fails the store stays
// off until a restart. mu must be held.
func (s *Store) survive(err error) error {
	if !errors.Is(err, buffer.ErrSideCorrupt) {
		return err
	}
	s.log.Error("ANALYTICS STORE DAMAGED: dropping it and counting again from the records in the buffer, "+
		"and from the archive at the next export", logkey.Err, err)
	if derr := s.side.Drop(storeBucket); derr != nil {
		s.log.Error("analytics store: cannot drop the damaged state; the store is off until lablog restarts", logkey.Err, derr)
		s.broken = true
		return nil
	}
	return nil
}

// BeforeSettle makes the store consume g's records up to last before the
// compactor deletes them: pass it as compactor.Options.BeforeSettle.
func (s *Store) BeforeSettle(g buffer.Group, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return nil // never hold the archive back for a store that is off
	}
	_, _, err := s.catchUpGroup(g, last, 0)
	if errors.Is(err, buffer.ErrSideCorrupt) {
		if err = s.survive(err); err == nil && !s.broken {
			_, _, err = s.catchUpGroup(g, last, 0)
			err = s.survive(err)
		}
	}
	return err
}

// mark is the last seq of g the store consumed, 0 for none.
func (s *Store) mark(g buffer.Group) (uint64, error) {
	var m uint64
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		if b == nil || b.Bucket(marksBucket) == nil {
			return nil
		}
		if v := b.Bucket(marksBucket).Get(markKey(g)); len(v) == 8 {
			m = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return m, err
}

// errBatchFull ends a scan once a batch is full.
var errBatchFull = errors.New("batch full")

// catchUpGroup consumes g's records after its mark up to upTo, in
// batches, at most about limit of them (0: no limit); more says it
// stopped at the limit.
func (s *Store) catchUpGroup(g buffer.Group, upTo uint64, limit int) (n int, more bool, err error) {
	if s.broken {
		return 0, false, nil
	}
	for {
		if limit > 0 && n >= limit {
			return n, true, nil
		}
		from, err := s.mark(g)
		if err != nil {
			return n, false, err
		}
		if from >= upTo {
			return n, false, nil
		}
		var batch []pending
		_, err = s.db.Scan(g, from+1, upTo, func(seq uint64, r frame.Record) error {
			batch = append(batch, pending{seq, r})
			if len(batch) == batchMax {
				return errBatchFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errBatchFull) {
			return n, false, err
		}
		if len(batch) == 0 {
			return n, false, nil // damaged blocks are the compactor's to set aside
		}
		if err := s.apply(g, batch); err != nil {
			return n, false, err
		}
		n += len(batch)
		if len(batch) < batchMax {
			return n, false, nil
		}
	}
}

// apply adds a batch of g's records and moves g's mark past them, in one
// transaction.
func (s *Store) apply(g buffer.Group, batch []pending) error {
	return s.update(func(t *stateTx) error {
		for _, p := range batch {
			if p.rec.Kind == frame.Statement {
				c := statement.ParseCall(frame.SplitStatement(p.rec.Data))
				if err := t.addEvent(EventFromCall(c, p.rec.Received.UnixMicro()), g.Stream, p.seq); err != nil {
					return err
				}
				continue
			}
			if p.rec.Kind != frame.Text {
				continue
			}
			msgs := frame.Split(p.rec.Data)
			t.st.Frames++
			if len(msgs) > 1 {
				t.st.GluedFrames++
				t.st.GluedMessages += int64(len(msgs))
			}
			for part, fm := range msgs {
				if fm.Err != "" {
					t.st.Messages++
					t.st.Unparsed++
					continue
				}
				if err := t.add(FromFrame(fm, p.rec.Received.UnixMicro()), g.Stream, p.seq, part); err != nil {
					return err
				}
			}
		}
		return t.setMark(g, batch[0].seq, batch[len(batch)-1].seq)
	})
}

// stateTx is one write transaction of the store's state: the buckets, the
// stats (saved at its end) and the graphs it touched.
type stateTx struct {
	b, marks, graphs *bolt.Bucket
	st               Stats
	touched          map[Key]bool
}

// update runs fn in one transaction of the store's file and marks the
// graphs it touched due for export.
func (s *Store) update(fn func(*stateTx) error) error {
	t := &stateTx{touched: map[Key]bool{}}
	err := s.side.Update(storeBucket, func(b *bolt.Bucket) error {
		t.b = b
		var err error
		if t.marks, err = b.CreateBucketIfNotExists(marksBucket); err != nil {
			return err
		}
		if t.graphs, err = b.CreateBucketIfNotExists(graphsBucket); err != nil {
			return err
		}
		if string(b.Get(keyFormat)) != formatNow {
			if err := b.Put(keyFormat, []byte(formatNow)); err != nil {
				return err
			}
		}
		if v := b.Get(keyStats); v != nil {
			if err := json.Unmarshal(v, &t.st); err != nil {
				return fmt.Errorf("stats: %w", err)
			}
		}
		if err := fn(t); err != nil {
			return err
		}
		sv, err := json.Marshal(t.st)
		if err != nil {
			return err
		}
		return b.Put(keyStats, sv)
	})
	if err != nil {
		return err
	}
	for k := range t.touched {
		s.dirty[k] = true
	}
	return nil
}

// setMark records that g was consumed from first (when it is g's first
// batch) up to last. Until the archive is read, g's first seq is kept too:
// g's records in the buffer run from some seq up (the compactor deletes
// the older ones), so the seed skips the archive's rows in [first, last].
func (t *stateTx) setMark(g buffer.Group, first, last uint64) error {
	k := markKey(g)
	if t.marks.Get(k) == nil && t.b.Get(keySeeded) == nil {
		firsts, err := t.b.CreateBucketIfNotExists(firstsBucket)
		if err != nil {
			return err
		}
		if err := firsts.Put(k, binary.BigEndian.AppendUint64(nil, first)); err != nil {
			return err
		}
	}
	return t.marks.Put(k, binary.BigEndian.AppendUint64(nil, last))
}

// add counts one parsed message, part of record (stream, seq).
func (t *stateTx) add(m Message, stream string, seq uint64, part int) error {
	v := t.st.classify(m)
	if v.kind == vNothing {
		return nil
	}
	gb, err := t.graphs.CreateBucketIfNotExists(graphKey(v.key))
	if err != nil {
		return err
	}
	t.touched[v.key] = true
	switch v.kind {
	case vForeign:
		t.st.ForeignCommands++
		if gb.Get(keyForeign) == nil {
			t.st.GraphsLostByRef++
			return gb.Put(keyForeign, []byte{1})
		}
	case vFeedback:
		return count(gb, fbBucket, v.feedback[0]+"\x00"+v.feedback[1])
	case vCommand:
		if err := t.step(gb, stepKey(*m.T, m.Arrival, stream, seq, part), v.node); err != nil {
			return err
		}
		return count(gb, usageBucket, v.name)
	}
	return nil
}

// addEvent counts one statement, record (stream, seq).
func (t *stateTx) addEvent(e Event, stream string, seq uint64) error {
	v := t.st.classifyEvent(e)
	if !v.ok {
		return nil
	}
	gb, err := t.graphs.CreateBucketIfNotExists(graphKey(v.key))
	if err != nil {
		return err
	}
	t.touched[v.key] = true
	if v.verb != "" {
		if err := count(gb, usageBucket, v.verb); err != nil {
			return err
		}
	}
	if v.session {
		starts, err := gb.CreateBucketIfNotExists(startsBucket)
		if err != nil {
			return err
		}
		if err := starts.Put(stepKey(*e.T, e.Arrival, stream, seq, 0), nil); err != nil {
			return err
		}
	}
	if v.node < 0 {
		return nil
	}
	return t.step(gb, stepKey(*e.T, e.Arrival, stream, seq, 0), uint8(v.node))
}

// step adds one command, node, to graph bucket gb at key (its place in
// time order).
func (t *stateTx) step(gb *bolt.Bucket, key []byte, node uint8) error {
	steps, err := gb.CreateBucketIfNotExists(stepsBucket)
	if err != nil {
		return err
	}
	t.st.Commands++
	return steps.Put(key, []byte{node})
}

// count adds one to name's count in graph bucket gb's counts bucket.
func count(gb *bolt.Bucket, bucket []byte, name string) error {
	counts, err := gb.CreateBucketIfNotExists(bucket)
	if err != nil {
		return err
	}
	var c uint64
	if old := counts.Get([]byte(name)); len(old) == 8 {
		c = binary.BigEndian.Uint64(old)
	}
	return counts.Put([]byte(name), binary.BigEndian.AppendUint64(nil, c+1))
}

// Seeded reports whether the state holds the archive: a new store (or one
// dropped after damage or a power cut) holds only what it read from the
// buffer until Seed has read the archive.
func (s *Store) Seeded() (bool, error) {
	seeded := false
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		seeded = b != nil && b.Get(keySeeded) != nil
		return nil
	})
	return seeded, err
}

// Seed adds the archive under root to a store that does not hold it yet
// (Seeded), skipping the rows the store already read from the buffer
// (its marks), and moves the marks past every archived record so the
// buffer's copy of one published but not yet deleted is not counted again.
// It holds the store for its whole run, so a compaction meanwhile waits
// for it (once, at start). It returns the rows it read.
func (s *Store) Seed(root string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seeded, err := s.Seeded(); err != nil || seeded || s.broken {
		return 0, s.survive(err)
	}
	files, err := ArchiveFiles(root)
	if err != nil {
		return 0, err
	}
	rows := 0
	for _, path := range files {
		meta, err := archive.ReadMeta(path)
		if err != nil {
			return rows, fmt.Errorf("analytics seed: %w", err)
		}
		g := buffer.Group{BufferID: meta.BufferID, Stream: meta.Stream, Hour: meta.Hour}
		err = s.update(func(t *stateTx) error {
			first, read := t.consumed(g)
			if _, err := archive.ScanMessages(path, func(r *archive.MessageRow) error {
				if r.Kind != archive.KindMessage && r.Kind != archive.KindStatement ||
					meta.BufferID != "" && first <= uint64(r.Seq) && uint64(r.Seq) <= read {
					return nil
				}
				rows++
				if r.Kind == archive.KindStatement {
					return t.addEvent(eventFromRow(r), meta.Stream, uint64(r.Seq))
				}
				return t.addRow(r, meta.Stream)
			}); err != nil {
				return fmt.Errorf("analytics seed: %w", err)
			}
			if v := t.marks.Get(markKey(g)); meta.BufferID == "" || len(v) == 8 && binary.BigEndian.Uint64(v) >= meta.LastSeq {
				return nil
			}
			// The buffer's copy of these records, if a crash kept one, is counted now.
			return t.marks.Put(markKey(g), binary.BigEndian.AppendUint64(nil, meta.LastSeq))
		})
		if err != nil {
			return rows, s.survive(err)
		}
	}
	return rows, s.survive(s.side.Update(storeBucket, func(b *bolt.Bucket) error {
		if err := b.DeleteBucket(firstsBucket); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
		return b.Put(keySeeded, []byte{1})
	}))
}

// consumed is the range of g's seqs read from the buffer before the seed
// (first > last when none).
func (t *stateTx) consumed(g buffer.Group) (first, last uint64) {
	k := markKey(g)
	f := t.b.Bucket(firstsBucket)
	if f == nil || len(f.Get(k)) != 8 || len(t.marks.Get(k)) != 8 {
		return 1, 0
	}
	return binary.BigEndian.Uint64(f.Get(k)), binary.BigEndian.Uint64(t.marks.Get(k))
}

// addRow counts an archive row, one message of a text frame, as
// Builder.addRow does.
func (t *stateTx) addRow(r *archive.MessageRow, stream string) error {
	switch r.Part {
	case 0:
		t.st.Frames++
	case 1:
		t.st.GluedFrames++
		t.st.GluedMessages += 2
	default:
		t.st.GluedMessages++
	}
	if r.Error != nil {
		t.st.Messages++
		t.st.Unparsed++
		return nil
	}
	m := Message{User: r.User, Exp: r.Exp, Course: r.Course, Hardware: r.Hardware, Type: r.Type, T: r.T, Payload: r.Payload, Arrival: r.ReceivedAt}
	return t.add(m, stream, uint64(r.Seq), int(r.Part))
}

// pruneMarks forgets the marks of groups no longer in the buffer: their
// records are gone, so a late record of that stream and hour, with a
// higher seq, is new whatever the mark said.
func (s *Store) pruneMarks(groups []buffer.Group) error {
	live := map[string]bool{}
	for _, g := range groups {
		live[string(markKey(g))] = true
	}
	var stale [][]byte
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		if b == nil || b.Bucket(marksBucket) == nil {
			return nil
		}
		return b.Bucket(marksBucket).ForEach(func(k, _ []byte) error {
			if !live[string(k)] {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	return s.side.Update(storeBucket, func(b *bolt.Bucket) error {
		marks := b.Bucket(marksBucket)
		for _, k := range stale {
			if err := marks.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Graphs returns the matrices of the given keys (all when keys is nil),
// with their feedback, in Keys order.
func (s *Store) Graphs(keys map[Key]bool) ([]Graph, Stats, error) {
	var out []Graph
	var st Stats
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		if v := b.Get(keyStats); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("stats: %w", err)
			}
		}
		graphs := b.Bucket(graphsBucket)
		if graphs == nil {
			return nil
		}
		return graphs.ForEachBucket(func(gk []byte) error {
			k := parseGraphKey(gk)
			e := Experiments[k.Exp]
			if e == nil || keys != nil && !keys[k] {
				return nil
			}
			g := readGraph(graphs.Bucket(gk), k, e)
			out = append(out, g)
			return nil
		})
	})
	sortGraphs(out)
	return out, st, err
}

// sortGraphs orders graphs as Builder.Keys does.
func sortGraphs(gs []Graph) {
	slices.SortFunc(gs, func(a, b Graph) int { return compareKeys(a.Key, b.Key) })
}

// Export writes the matrices that changed since the last export into dir
// (created if missing), each replaced atomically and synced, and returns
// how many it wrote. A graph whose write failed stays due.
func (s *Store) Export(dir string) (int, error) {
	s.mu.Lock()
	due := s.dirty
	s.dirty = map[Key]bool{}
	s.mu.Unlock()
	if len(due) == 0 {
		return 0, nil
	}
	requeue := func() {
		s.mu.Lock()
		for k := range due {
			s.dirty[k] = true
		}
		s.mu.Unlock()
	}
	graphs, _, err := s.Graphs(due)
	if err != nil {
		requeue()
		return 0, err
	}
	// Students' data on the archive drive: modes as the archive's files.
	if err := os.MkdirAll(dir, archive.DirMode); err != nil {
		requeue()
		return 0, fmt.Errorf("analytics export: %w", err)
	}
	for i, g := range graphs {
		var buf bytes.Buffer
		_ = g.Matrix.WriteCSV(&buf)
		if err := atomicfile.WriteFile(filepath.Join(dir, FileName(g.Key, "-adjacency.csv")), buf.Bytes(), archive.FileMode); err != nil {
			for _, rest := range graphs[i:] {
				s.mu.Lock()
				s.dirty[rest.Key] = true
				s.mu.Unlock()
			}
			return i, fmt.Errorf("analytics export: %w", err)
		}
	}
	return len(graphs), nil
}

// Counts is what the status page may show of the store: counts, never ids.
type Counts struct {
	Graphs   int   `json:"graphs"`
	Commands int64 `json:"commands"`
	Due      int   `json:"due"` // graphs changed since the last export
}

// Counts reports the store's size.
func (s *Store) Counts() (Counts, error) {
	var c Counts
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		var st Stats
		if v := b.Get(keyStats); v != nil {
			_ = json.Unmarshal(v, &st)
		}
		c.Commands = st.Commands
		if g := b.Bucket(graphsBucket); g != nil {
			_ = g.ForEachBucket(func([]byte) error { c.Graphs++; return nil })
		}
		return nil
	})
	s.mu.Lock()
	c.Due = len(s.dirty)
	s.mu.Unlock()
	return c, err
}

// ExportDir is where `lablog run` writes the store's matrices: the folder
// analytics/ of the archive.
func ExportDir(root *archive.Root) string { return filepath.Join(root.Path(), "analytics") }

// Options configure a Store (its Run: the store itself needs none).
type Options struct {
	CatchUp time.Duration // how often to consume new records (default 2 s)
	Export  time.Duration // how often to write changed matrices (default 5 min)
	// Target opens the archive drive when it is usable (the compactor's
	// check); the export waits while it is not.
	Target func() (*archive.Root, error)
	// Committed, when set, counts the records committed to the buffer: a
	// tick that finds it unchanged since the last catch-up reads nothing,
	// so an idle recorder costs no work here.
	Committed func() int64
	// Behind, when set, says the recorder's writer is behind (its queue
	// deep): the periodic catch-up then stops between slices of records
	// and resumes at a later tick, so deriving the graphs never takes the
	// CPU that recording needs. The records wait safely in the buffer.
	Behind func() bool
	// Logger is where the store logs; default slog.Default().
	Logger *slog.Logger
}

// DefaultExport is how often changed matrices are written to the archive
// drive (config analytics.export).
const DefaultExport = 5 * time.Minute

// stopCatchUp bounds the catch-up when Run stops: after the writer was
// behind for long the backlog may be large, and what is left is consumed
// at the next start (from the marks), so a stop stays well inside the
// service's stop timeout.
const stopCatchUp = 5 * time.Second

// Run catches up and exports at once (after a restart every graph is
// due), then consumes new records every CatchUp and exports what changed
// every Export, until ctx ends; then it consumes what was committed last
// (for at most stopCatchUp), without exporting, so a stop stays quick (the
// next start exports).
// Errors are logged and retried, so Run returns nil.
func (s *Store) Run(ctx context.Context) error {
	o := s.opts
	var seen int64 = -1 // Committed at the last catch-up that succeeded
	step := func(export bool) {
		now := int64(-1)
		if o.Committed != nil {
			now = o.Committed()
		}
		if export || now < 0 || now != seen {
			if s.step(o, export, o.Behind) {
				seen = now
			}
		}
	}
	step(true)
	catchUp := time.NewTicker(o.CatchUp)
	defer catchUp.Stop()
	export := time.NewTicker(o.Export)
	defer export.Stop()
	for {
		select {
		case <-ctx.Done():
			deadline := time.Now().Add(stopCatchUp)
			s.step(o, false, func() bool { return time.Now().After(deadline) })
			return nil
		case <-catchUp.C:
			step(false)
		case <-export.C:
			step(true)
		}
	}
}

// seed reads the archive into a store that does not hold it yet, logging
// how long it took, and reports whether the store holds the archive.
func (s *Store) seed(root string) bool {
	if seeded, err := s.Seeded(); err != nil || seeded {
		return err == nil
	}
	start := time.Now()
	rows, err := s.Seed(root)
	if err != nil {
		s.log.Error("analytics store: reading the archive failed; retrying at the next export", "rows", rows, logkey.Err, err)
		return false
	}
	s.log.Info("analytics store: archive read", "rows", rows, "took", time.Since(start).Round(time.Millisecond))
	return true
}

// step catches up (until behind says stop), and exports if asked; it
// reports whether the catch-up consumed everything.
func (s *Store) step(o Options, export bool, behind func() bool) (caughtUp bool) {
	n, all, err := s.catchUpUnlessBehind(behind)
	if err != nil {
		s.catchUpFails.Failed(context.Background(), s.log.With("consumed", n), time.Now(),
			"analytics store: catching up failed; retrying", "analytics store: catching up still failing", err)
	} else {
		s.catchUpFails.Ended(s.log, time.Now(), "analytics store: caught up after failing")
	}
	caughtUp = err == nil && all
	if !export || o.Target == nil {
		return caughtUp
	}
	root, err := o.Target()
	if err != nil {
		s.log.Warn("analytics store: archive drive unavailable; export waits", logkey.Err, err)
		return caughtUp
	}
	defer root.Close()
	if !s.seed(root.Path()) {
		return caughtUp // the drive's matrices hold more than the store yet
	}
	written, err := s.Export(ExportDir(root))
	if err != nil {
		s.log.Error("analytics store: export failed; retrying", "written", written, logkey.Err, err)
		return caughtUp
	}
	if written > 0 {
		s.log.Info("analytics store: matrices exported", "graphs", written)
	}
	return caughtUp
}

// readGraph reads graph bucket gb of key k: its steps counted into a
// matrix over e's nodes, and its feedback.
func readGraph(gb *bolt.Bucket, k Key, e *Experiment) Graph {
	g := Graph{Key: k, Matrix: NewMatrix(e.Nodes)}
	if steps := gb.Bucket(stepsBucket); steps != nil {
		prev := -1
		c := steps.Cursor()
		for sk, v := c.First(); sk != nil; sk, v = c.Next() {
			node := int(v[0])
			if prev >= 0 {
				g.Matrix.W[prev][node]++
			}
			prev = node
			g.Commands++
		}
	}
	if fb := gb.Bucket(fbBucket); fb != nil {
		g.Feedback = map[[2]string]int{}
		_ = fb.ForEach(func(fk, v []byte) error {
			p := strings.SplitN(string(fk), "\x00", 2)
			if len(p) == 2 && len(v) == 8 {
				g.Feedback[[2]string{p[0], p[1]}] += int(binary.BigEndian.Uint64(v))
			}
			return nil
		})
	}
	return g
}

// DropState deletes the live store's file beside the buffer at bufferPath,
// so the next OpenStore counts everything again from the buffer and the
// archive, as after a power cut: the way to forget records erased from
// both (lablog subject erase). lablog must not be running on the buffer.
func DropState(bufferPath string) error { return buffer.RemoveSide(bufferPath, storeBucket) }
