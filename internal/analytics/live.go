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
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/archive"
	"github.com/practable/lablog/internal/buffer"
	"github.com/practable/lablog/internal/frame"
	"github.com/practable/lablog/internal/retrylog"
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
// buffer.
type Store struct {
	db   *buffer.DB
	side *buffer.SideFile
	log  *slog.Logger

	mu     sync.Mutex // one catch-up at a time; guards dirty and broken
	dirty  map[Key]bool
	broken bool // the state is damaged and could not be dropped: off until restart

	catchUpFails retrylog.Run // failed catch-ups in a row, for the log; Run's goroutine only
}

const (
	storeBucket = "analytics"
	batchMax    = 2000 // records per transaction: short, so commits barely wait
)

var (
	marksBucket  = []byte("marks")
	graphsBucket = []byte("graphs")
	stepsBucket  = []byte("s")
	fbBucket     = []byte("f")
	keyForeign   = []byte("x")
	keyStats     = []byte("stats")
)

// OpenStore opens the store kept beside db. Every graph is due for export.
func OpenStore(db *buffer.DB, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	dropInBuffer(db, log)
	side, fresh, err := db.OpenSide(storeBucket)
	if err != nil {
		return nil, fmt.Errorf("analytics store: %w", err)
	}
	if fresh {
		log.Info("analytics store: new, counting from the records in the buffer; " +
			"older matrices: lablog analytics --archive")
	}
	s := &Store{db: db, side: side, log: log, dirty: map[Key]bool{}, catchUpFails: retrylog.Run{Level: slog.LevelError}}
	err = s.side.View(storeBucket, func(b *bolt.Bucket) error {
		if b == nil || b.Bucket(graphsBucket) == nil {
			return nil
		}
		return b.Bucket(graphsBucket).ForEachBucket(func(k []byte) error {
			s.dirty[parseGraphKey(k)] = true
			return nil
		})
	})
	if err != nil {
		s.mu.Lock()
		err = s.survive(err) // damage never stops lablog from starting
		s.mu.Unlock()
	}
	return s, err
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
		log.Error("analytics store: cannot drop the old state in the buffer; it stays, unused", "err", err)
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
	groups, err := s.db.Groups()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range groups {
		s.mu.Lock()
		k, err := s.catchUpGroup(g, ^uint64(0))
		err = s.survive(err)
		s.mu.Unlock()
		n += k
		if err != nil {
			return n, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return n, nil
	}
	// Marks are made only under mu: a group missing from a list taken
	// under mu has no records left, so its mark can go.
	if groups, err = s.db.Groups(); err != nil {
		return n, err
	}
	return n, s.survive(s.pruneMarks(groups))
}

// survive handles damage to the store's own state (bbolt pages the
// buffer's check at open does not read): the state is dropped and rebuilt
// from the records still in the buffer, so the recording and the archive
// never wait for it; the older matrices must then be rebuilt from the
// archive with lablog analytics. If even dropping fails the store stays
// off until a restart. mu must be held.
func (s *Store) survive(err error) error {
	if !errors.Is(err, buffer.ErrSideCorrupt) {
		return err
	}
	s.log.Error("ANALYTICS STORE DAMAGED: dropping it and counting again from the records in the buffer; "+
		"rebuild older matrices with lablog analytics --archive", "err", err)
	if derr := s.side.Drop(storeBucket); derr != nil {
		s.log.Error("analytics store: cannot drop the damaged state; the store is off until lablog restarts", "err", derr)
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
	_, err := s.catchUpGroup(g, last)
	if errors.Is(err, buffer.ErrSideCorrupt) {
		if err = s.survive(err); err == nil && !s.broken {
			_, err = s.catchUpGroup(g, last)
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

// catchUpGroup consumes g's records after its mark up to upTo, in batches.
func (s *Store) catchUpGroup(g buffer.Group, upTo uint64) (int, error) {
	if s.broken {
		return 0, nil
	}
	n := 0
	for {
		from, err := s.mark(g)
		if err != nil {
			return n, err
		}
		if from >= upTo {
			return n, nil
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
			return n, err
		}
		if len(batch) == 0 {
			return n, nil // damaged blocks are the compactor's to set aside
		}
		if err := s.apply(g, batch); err != nil {
			return n, err
		}
		n += len(batch)
		if len(batch) < batchMax {
			return n, nil
		}
	}
}

// apply adds a batch of g's records and moves g's mark past them, in one
// transaction.
func (s *Store) apply(g buffer.Group, batch []pending) error {
	touched := map[Key]bool{}
	err := s.side.Update(storeBucket, func(b *bolt.Bucket) error {
		marks, err := b.CreateBucketIfNotExists(marksBucket)
		if err != nil {
			return err
		}
		graphs, err := b.CreateBucketIfNotExists(graphsBucket)
		if err != nil {
			return err
		}
		var st Stats
		if v := b.Get(keyStats); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("stats: %w", err)
			}
		}
		for _, p := range batch {
			if p.rec.Kind != frame.Text {
				continue
			}
			msgs := frame.Split(p.rec.Data)
			st.Frames++
			if len(msgs) > 1 {
				st.GluedFrames++
				st.GluedMessages += int64(len(msgs))
			}
			for part, fm := range msgs {
				if fm.Err != "" {
					st.Messages++
					st.Unparsed++
					continue
				}
				m := FromFrame(fm, p.rec.Received.UnixMicro())
				v := st.classify(m)
				if v.kind == vNothing {
					continue
				}
				gb, err := graphs.CreateBucketIfNotExists(graphKey(v.key))
				if err != nil {
					return err
				}
				touched[v.key] = true
				switch v.kind {
				case vForeign:
					st.ForeignCommands++
					if gb.Get(keyForeign) == nil {
						st.GraphsLostByRef++
						if err := gb.Put(keyForeign, []byte{1}); err != nil {
							return err
						}
					}
				case vFeedback:
					fb, err := gb.CreateBucketIfNotExists(fbBucket)
					if err != nil {
						return err
					}
					fk := []byte(v.feedback[0] + "\x00" + v.feedback[1])
					var c uint64
					if old := fb.Get(fk); len(old) == 8 {
						c = binary.BigEndian.Uint64(old)
					}
					if err := fb.Put(fk, binary.BigEndian.AppendUint64(nil, c+1)); err != nil {
						return err
					}
				case vCommand:
					steps, err := gb.CreateBucketIfNotExists(stepsBucket)
					if err != nil {
						return err
					}
					if err := steps.Put(stepKey(*m.T, m.Arrival, g.Stream, p.seq, part), []byte{v.node}); err != nil {
						return err
					}
					st.Commands++
				}
			}
		}
		sv, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if err := b.Put(keyStats, sv); err != nil {
			return err
		}
		return marks.Put(markKey(g), binary.BigEndian.AppendUint64(nil, batch[len(batch)-1].seq))
	})
	if err != nil {
		return err
	}
	for k := range touched {
		s.dirty[k] = true
	}
	return nil
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
			gb := graphs.Bucket(gk)
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
		if err := writeSynced(filepath.Join(dir, FileName(g.Key, "-adjacency.csv")), buf.Bytes()); err != nil {
			for _, rest := range graphs[i:] {
				s.mu.Lock()
				s.dirty[rest.Key] = true
				s.mu.Unlock()
			}
			return i, err
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return len(graphs), nil
}

// writeSynced replaces path atomically with data, synced before the rename
// so a power cut leaves the old file or the new one.
func writeSynced(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, archive.FileMode)
	if err != nil {
		return fmt.Errorf("analytics export: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("analytics export %s: %w", path, err)
	}
	return nil
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

// RunOptions configure Store.Run.
type RunOptions struct {
	CatchUp time.Duration // how often to consume new records (default 2 s)
	Export  time.Duration // how often to write changed matrices (default 5 min)
	// Target opens the archive drive when it is usable (the compactor's
	// check); the export waits while it is not.
	Target func() (*archive.Root, error)
	// Committed, when set, counts the records committed to the buffer: a
	// tick that finds it unchanged since the last catch-up reads nothing,
	// so an idle recorder costs no work here.
	Committed func() int64
}

// DefaultExport is how often changed matrices are written to the archive
// drive (config analytics.export).
const DefaultExport = 5 * time.Minute

// Run catches up and exports at once (after a restart every graph is
// due), then consumes new records every CatchUp and exports what changed
// every Export, until ctx ends; then it consumes what was committed last,
// without exporting, so a stop stays quick (the next start exports).
// Errors are logged and retried.
func (s *Store) Run(ctx context.Context, o RunOptions) {
	if o.CatchUp <= 0 {
		o.CatchUp = 2 * time.Second
	}
	if o.Export <= 0 {
		o.Export = DefaultExport
	}
	var seen int64 = -1 // Committed at the last catch-up that succeeded
	step := func(export bool) {
		now := int64(-1)
		if o.Committed != nil {
			now = o.Committed()
		}
		if export || now < 0 || now != seen {
			if s.step(o, export) {
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
			s.step(o, false)
			return
		case <-catchUp.C:
			step(false)
		case <-export.C:
			step(true)
		}
	}
}

// step catches up, and exports if asked; it reports whether the catch-up
// succeeded.
func (s *Store) step(o RunOptions, export bool) (caughtUp bool) {
	n, err := s.CatchUp()
	if err != nil {
		s.catchUpFails.Failed(context.Background(), s.log.With("consumed", n), time.Now(),
			"analytics store: catching up failed; retrying", "analytics store: catching up still failing", err)
	} else {
		s.catchUpFails.Ended(s.log, time.Now(), "analytics store: caught up after failing")
	}
	caughtUp = err == nil
	if !export || o.Target == nil {
		return caughtUp
	}
	root, err := o.Target()
	if err != nil {
		s.log.Warn("analytics store: archive drive unavailable; export waits", "err", err)
		return caughtUp
	}
	defer root.Close()
	written, err := s.Export(ExportDir(root))
	if err != nil {
		s.log.Error("analytics store: export failed; retrying", "written", written, "err", err)
		return caughtUp
	}
	if written > 0 {
		s.log.Info("analytics store: matrices exported", "graphs", written)
	}
	return caughtUp
}
