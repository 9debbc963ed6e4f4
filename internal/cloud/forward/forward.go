// Package forward is lablog's store and forward: it POSTs every committed
// /addLog statement on to an upstream logging host (the analytics server
// the UIs used to call), so lablog can stand in front of it. Ingest never
// waits on it: statements are read back from where they are kept, the
// buffer while they are there and the archive's Parquet files once the
// compactor has moved them, and the compactor is never held back.
//
// Order: each stream in seq (commit) order; streams take turns, a batch at
// a time, in name order. A statement the upstream does not answer with a
// 2xx is tried again, after a jittered exponential backoff, before any
// later one: the upstream is one host, and its outage holds every stream.
//
// Delivery is at least once. How far it got is a mark per stream: the
// (buffer id, seq) of the last statement answered 2xx, kept in a side bucket
// of the buffer, written at most once per MarkEvery and at shutdown. After a
// crash the statements forwarded since the last mark write are sent again:
// at most MarkEvery's worth plus the one request in flight.
package forward

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/waitfor"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// Defaults of Options (config.Default is built from the backoffs).
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultPoll       = 250 * time.Millisecond
	DefaultMarkEvery  = time.Second
	DefaultTimeout    = 30 * time.Second
	// batch bounds the statements read per stream and turn, so a stream's
	// backlog neither sits in memory nor starves the other streams.
	batch = 256
)

// sideBucket holds the marks: stream -> buffer id (16 hex digits) and seq
// (8 bytes big-endian). It lives in the buffer it describes, so a fresh
// buffer (a new id) starts without marks.
const sideBucket = "forward"

// Options configure a Forwarder.
type Options struct {
	URL            string // the upstream's base URL; statements go to {URL}/addLog?{query}
	User, Password string // its Basic credential
	Buffer         *buffer.DB
	ArchiveRoot    string // where the compactor publishes
	ArchiveRequire string // archive.CheckTarget's requirement for it
	Prefix         string // streams whose names start with it hold statements
	MinBackoff     time.Duration
	MaxBackoff     time.Duration
	Poll           time.Duration // how often to look for new statements when caught up
	MarkEvery      time.Duration // how often the marks may be written
	Client         *http.Client  // nil: one with DefaultTimeout
	Logger         *slog.Logger
}

// Stats are the forwarder's state for the status page, /api/status and
// /metrics. URL carries no credential.
type Stats struct {
	URL       string `json:"url"`
	Forwarded int64  `json:"forwarded"` // answered 2xx since start
	// FromArchive counts those read back from archive files.
	FromArchive int64 `json:"from_archive"`
	Failures    int64 `json:"failures"` // attempts not answered 2xx
	// Skipped counts statements found in neither the buffer nor an
	// available archive (damaged blocks set aside): they cannot be sent.
	Skipped int64 `json:"skipped"`
	// Pending is the lag: statements committed and not yet forwarded;
	// Oldest is when the oldest of them was received, once read.
	Pending       int64      `json:"pending"`
	Oldest        *time.Time `json:"oldest_pending,omitempty"`
	LastForwarded *time.Time `json:"last_forwarded,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
}

// Lag is the age of the oldest statement not yet forwarded at now; 0 when
// none waits (or its time is not known yet).
func (s Stats) Lag(now time.Time) time.Duration {
	if s.Pending == 0 || s.Oldest == nil {
		return 0
	}
	return max(0, now.Sub(*s.Oldest))
}

// mark is how far a stream got.
type mark struct {
	bufferID string
	seq      uint64
}

// Forwarder forwards statements until its context ends.
type Forwarder struct {
	opts Options
	base *url.URL
	log  *slog.Logger

	mu      sync.Mutex
	marks   map[string]mark
	dirty   bool
	pending map[string]int64
	st      Stats

	// cache is the last archive window read (forwarder goroutine only).
	cache        archived
	archiveReads atomic.Int64 // archive files read, for tests
}

// archived is what one read of an archive file kept: the records of a
// window of seqs, beyond the batch asked for, so that a long backlog in
// one file is not read again for every batch.
type archived struct {
	path   string
	lo, hi uint64
	items  map[uint64]item
}

// New makes a forwarder and reads its marks from the buffer.
func New(o Options) (*Forwarder, error) {
	base, err := url.Parse(o.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("forward: url %q: want http(s)://host[:port][/path]", o.URL)
	}
	base.User = nil
	setDefault := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDefault(&o.MinBackoff, DefaultMinBackoff)
	setDefault(&o.MaxBackoff, DefaultMaxBackoff)
	setDefault(&o.Poll, DefaultPoll)
	setDefault(&o.MarkEvery, DefaultMarkEvery)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Client == nil {
		o.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &Forwarder{opts: o, base: base, log: o.Logger, marks: map[string]mark{}, pending: map[string]int64{}}
	f.st.URL = base.String()
	if err := f.loadMarks(); err != nil {
		return nil, err
	}
	return f, nil
}

// Stats returns a snapshot.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Pending = 0
	for _, n := range f.pending {
		st.Pending += n
	}
	if st.Pending == 0 {
		st.Oldest = nil
	}
	return st
}

// Run forwards until ctx ends, then writes the marks.
func (f *Forwarder) Run(ctx context.Context) error {
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		f.saveEvery(ctx)
	}()
	var failures int
	for ctx.Err() == nil {
		progressed, err := f.round(ctx)
		wait := f.opts.Poll
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = f.backoff(failures)
			f.failed(err, wait)
		case err == nil:
			if failures > 0 {
				f.log.Info("forwarding again", "after_failures", failures)
			}
			failures = 0
			if progressed {
				wait = 0
			}
		}
		if !waitfor.Sleep(ctx, wait) {
			break
		}
	}
	<-saved
	return f.saveMarks()
}

// backoff is the wait after the n-th failure in a row: drawn from the
// upper half of a ceiling doubling from MinBackoff to MaxBackoff, never
// under MinBackoff, so a dead upstream is never called in a loop.
func (f *Forwarder) backoff(n int) time.Duration {
	c := f.opts.MinBackoff
	for i := 1; i < n && c < f.opts.MaxBackoff; i++ {
		c *= 2
	}
	c = min(c, f.opts.MaxBackoff)
	return max(f.opts.MinBackoff, c/2+rand.N(c/2+1))
}

func (f *Forwarder) failed(err error, wait time.Duration) {
	now := time.Now()
	f.mu.Lock()
	f.st.Failures++
	f.st.LastError, f.st.LastErrorAt = err.Error(), &now
	f.mu.Unlock()
	f.log.Warn("forward failed; retrying later", logkey.Err, err, "retry_in", wait.Round(time.Millisecond))
}

// round gives every stream with statements not yet forwarded one turn of at
// most a batch; progressed says whether any stream moved on.
func (f *Forwarder) round(ctx context.Context) (progressed bool, err error) {
	db := f.opts.Buffer
	lasts, err := db.LastSeqs(f.opts.Prefix)
	if err != nil {
		return false, err
	}
	streams := make([]string, 0, len(lasts))
	for s, last := range lasts {
		m := f.markOf(s)
		f.setPending(s, int64(last-m.seq), nil)
		if last > m.seq {
			streams = append(streams, s)
		}
	}
	sort.Strings(streams)
	for _, s := range streams {
		moved, err := f.turn(ctx, s, lasts[s])
		progressed = progressed || moved
		if err != nil {
			return progressed, err
		}
	}
	return progressed, nil
}

// item is one record of a stream read back: a statement's data, or nil for
// a record of another kind (passed over).
type item struct {
	data        []byte
	received    time.Time
	fromArchive bool
}

// turn forwards the statements of stream after its mark, up to a batch and
// never past last (read before the records, so every seq up to it is in the
// buffer or, moved by the compactor, in the archive).
func (f *Forwarder) turn(ctx context.Context, stream string, last uint64) (bool, error) {
	m := f.markOf(stream)
	lo, hi := m.seq+1, min(last, m.seq+batch)
	items, err := f.fromBuffer(stream, lo, hi)
	if err != nil {
		return false, err
	}
	if len(items) < int(hi-lo+1) {
		// The compactor moved some away: publish comes before delete, so
		// what is no longer in the buffer is in the archive now.
		if err := f.fromArchive(stream, lo, hi, items); err != nil {
			return false, err
		}
	}
	if len(items) < int(hi-lo+1) {
		if err := archive.CheckTarget(f.opts.ArchiveRoot, f.opts.ArchiveRequire); err != nil {
			return false, fmt.Errorf("forward %s: statements after seq %d are in neither the buffer nor the archive: %w", stream, m.seq, err)
		}
	}
	moved := false
	for seq := lo; seq <= hi; seq++ {
		it, ok := items[seq]
		switch {
		case !ok:
			f.log.Warn("forward: a statement is in neither the buffer nor the archive (set aside as damaged?): skipped", logkey.Stream, stream, "seq", seq)
			f.mu.Lock()
			f.st.Skipped++
			f.mu.Unlock()
		case it.data != nil:
			f.setPending(stream, int64(last-seq+1), &it.received)
			if err := f.send(ctx, it.data); err != nil {
				return moved, fmt.Errorf("forward %s seq %d: %w", stream, seq, err)
			}
			f.forwarded(it.fromArchive)
		}
		f.advance(stream, seq)
		f.setPending(stream, int64(last-seq), nil)
		moved = true
	}
	return moved, nil
}

// fromBuffer reads stream's records with a seq in [lo, hi] from the buffer.
// A stream's hours need not be in seq order (the clock may step back), so
// every hour of it is looked at.
func (f *Forwarder) fromBuffer(stream string, lo, hi uint64) (map[uint64]item, error) {
	db := f.opts.Buffer
	groups, err := db.Groups()
	if err != nil {
		return nil, err
	}
	items := map[uint64]item{}
	for _, g := range groups {
		if g.Stream != stream || g.BufferID != db.ID() {
			continue
		}
		_, err := db.Scan(g, lo, hi, func(seq uint64, r frame.Record) error {
			it := item{received: r.Received}
			if r.Kind == frame.Statement {
				it.data = bytes.Clone(r.Data)
			}
			items[seq] = it
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

// fromArchive adds to items the records of stream with a seq in [lo, hi]
// from this buffer's archive files, verified as they are read.
func (f *Forwarder) fromArchive(stream string, lo, hi uint64, items map[uint64]item) error {
	id := f.opts.Buffer.ID()
	paths, err := filepath.Glob(filepath.Join(f.opts.ArchiveRoot, "stream="+stream, "date=*", "*.parquet"))
	if err != nil {
		return fmt.Errorf("forward: archive of %s: %w", stream, err)
	}
	for _, p := range paths {
		n, ok := archive.ParseFileName(filepath.Base(p))
		if !ok || n.Stream != stream || n.BufferID != id || n.Last < lo || n.First > hi {
			continue
		}
		if c := f.cache; c.path != p || lo < c.lo || min(hi, n.Last) > c.hi {
			if err := f.readArchived(p, n, lo); err != nil {
				return err
			}
		}
		for seq := lo; seq <= hi; seq++ {
			if it, ok := f.cache.items[seq]; ok {
				items[seq] = it
			}
		}
	}
	return nil
}

// archiveWindow is how many seqs one read of an archive file keeps.
const archiveWindow = 16 * batch

// readArchived reads the window of file p (named n) from seq lo into the
// cache, verifying the whole file as it goes.
func (f *Forwarder) readArchived(p string, n archive.Name, lo uint64) error {
	f.archiveReads.Add(1)
	c := archived{path: p, lo: lo, hi: min(n.Last, lo+archiveWindow-1), items: map[uint64]item{}}
	_, err := archive.VerifyFrames(p, func(seq uint64, kind frame.Kind, data []byte) error {
		if seq < c.lo || seq > c.hi {
			return nil
		}
		// The file keeps each row's time, but the frames it rebuilds do
		// not carry it: the hour is close enough for the lag.
		it := item{received: n.Hour, fromArchive: true}
		if kind == frame.Statement {
			it.data = bytes.Clone(data)
		}
		c.items[seq] = it
		return nil
	})
	if err != nil {
		f.cache = archived{}
		return fmt.Errorf("forward: %w", err)
	}
	f.cache = c
	return nil
}

// send POSTs one statement's data (kept query, newline, body) upstream.
func (f *Forwarder) send(ctx context.Context, data []byte) error {
	query, body := frame.SplitStatement(data)
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("kept query: %w", err)
	}
	q.Del("client") // lablog's own note of who called, not the UI's
	u := f.base.JoinPath("addLog")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(f.opts.User, f.opts.Password)
	resp, err := f.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read a little of the answer, so the connection can be used again.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("upstream answered %s", resp.Status)
	}
	return nil
}

func (f *Forwarder) markOf(stream string) mark {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.marks[stream]
	if !ok || m.bufferID != f.opts.Buffer.ID() {
		return mark{bufferID: f.opts.Buffer.ID()}
	}
	return m
}

func (f *Forwarder) advance(stream string, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.marks[stream] = mark{bufferID: f.opts.Buffer.ID(), seq: seq}
	f.dirty = true
}

func (f *Forwarder) setPending(stream string, n int64, oldest *time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[stream] = n
	if oldest != nil {
		t := *oldest
		f.st.Oldest = &t
	}
	total := int64(0)
	for _, p := range f.pending {
		total += p
	}
	if total == 0 {
		f.st.Oldest = nil // caught up: no stale age when the next one comes
	}
}

func (f *Forwarder) forwarded(fromArchive bool) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.Forwarded++
	if fromArchive {
		f.st.FromArchive++
	}
	f.st.LastForwarded = &now
}

// saveEvery writes changed marks at most once per MarkEvery until ctx ends.
func (f *Forwarder) saveEvery(ctx context.Context) {
	t := time.NewTicker(f.opts.MarkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.saveMarks(); err != nil {
				f.log.Error("forward: marks not saved", logkey.Err, err)
			}
		}
	}
}

// saveMarks writes the marks when they changed since the last write.
func (f *Forwarder) saveMarks() error {
	f.mu.Lock()
	if !f.dirty {
		f.mu.Unlock()
		return nil
	}
	marks := make(map[string]mark, len(f.marks))
	for s, m := range f.marks {
		marks[s] = m
	}
	f.dirty = false
	f.mu.Unlock()
	err := f.opts.Buffer.UpdateSide(sideBucket, func(b *bolt.Bucket) error {
		for _, s := range slices.Sorted(maps.Keys(marks)) {
			m := marks[s]
			if err := b.Put([]byte(s), append([]byte(m.bufferID), binary.BigEndian.AppendUint64(nil, m.seq)...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.mu.Lock()
		f.dirty = true
		f.mu.Unlock()
		return fmt.Errorf("forward: save marks: %w", err)
	}
	return nil
}

// loadMarks reads the marks; damaged ones are dropped (statements are sent
// again: at least once).
func (f *Forwarder) loadMarks() error {
	marks, err := readMarks(f.opts.Buffer)
	if errors.Is(err, buffer.ErrSideCorrupt) {
		f.log.Error("forward: marks damaged: forwarding again from the start", logkey.Err, err)
		return f.opts.Buffer.DropSide(sideBucket)
	}
	maps.Copy(f.marks, marks)
	return err
}

func readMarks(db *buffer.DB) (map[string]mark, error) {
	marks := map[string]mark{}
	err := db.ViewSide(sideBucket, func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) > 8 {
				marks[string(k)] = mark{bufferID: string(v[:len(v)-8]), seq: binary.BigEndian.Uint64(v[len(v)-8:])}
			}
			return nil
		})
	})
	return marks, err
}

// SavedMarks is, per stream, the seq of the last statement of db's own
// records that the upstream acknowledged, as last saved: after a crash,
// forwarding starts after it.
func SavedMarks(db *buffer.DB) (map[string]uint64, error) {
	marks, err := readMarks(db)
	out := map[string]uint64{}
	for s, m := range marks {
		if m.bufferID == db.ID() {
			out[s] = m.seq
		}
	}
	return out, err
}
