// Package buffer is lablog's durable store on the SD card: a bbolt file that
// holds every record between its arrival and its publication in the archive.
//
// Layout: a top-level bucket "streams" holds one bucket per stream. Keys are
// the UTC hour of arrival (8 bytes) followed by the stream's sequence number
// (8 bytes), both big-endian, so one hour of one stream is a contiguous key
// range and appends land at the end of the tree (FillPercent 1.0 pays off).
package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/practable/lablog/internal/frame"
)

// ErrLocked is returned by Open when another process holds the buffer.
var ErrLocked = errors.New("locked by another process (is another lablog running?)")

var streamsBucket = []byte("streams")

// Options configure Open. The zero value of each field means its default.
type Options struct {
	// MaxSize caps the file; beyond it commits fail instead of filling the
	// card (and, on 32-bit ARM, instead of bbolt panicking past 2 GiB).
	// Default 1 GiB.
	MaxSize int64
	// InitialMmapSize maps this much up front, so a long read during
	// compaction never blocks commits on a remap. Default 64 MiB.
	InitialMmapSize int
	// LockTimeout bounds the wait for the file lock. Default 1 s.
	LockTimeout time.Duration
	// SkipCheck skips the page consistency check at open.
	SkipCheck bool
	Logger    *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxSize == 0 {
		o.MaxSize = 1 << 30
	}
	if o.InitialMmapSize == 0 {
		o.InitialMmapSize = 64 << 20
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// DB is an open buffer.
type DB struct {
	bolt        *bolt.DB
	path        string
	quarantined string
	syncs       syncCounter
	slow        *SlowSync
}

// Open opens or creates the buffer at path. A file bbolt cannot open or that
// fails its consistency check is renamed aside (quarantined) and a fresh
// buffer is started, so a damaged card never stops the recording; the caller
// must report Quarantined loudly. A buffer locked by another process is an
// error wrapping ErrLocked.
func Open(path string, opts Options) (*DB, error) {
	opts.setDefaults()
	slow, err := slowSyncFromEnv()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	db, err := openChecked(path, opts)
	if err == nil {
		return &DB{bolt: db, path: path, slow: slow}, nil
	}
	if errors.Is(err, ErrLocked) || errors.Is(err, os.ErrPermission) {
		return nil, err
	}
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("buffer %s: %w (and could not quarantine it: %v)", path, err, rerr)
	}
	opts.Logger.Error("buffer was corrupt: quarantined it and started a fresh one",
		"path", path, "quarantined", aside, "err", err)
	db, err2 := openChecked(path, opts)
	if err2 != nil {
		return nil, fmt.Errorf("buffer %s: fresh buffer after quarantine: %w", path, err2)
	}
	return &DB{bolt: db, path: path, quarantined: aside, slow: slow}, nil
}

func openChecked(path string, opts Options) (db *bolt.DB, err error) {
	// bbolt panics on some kinds of page corruption rather than erroring.
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, fmt.Errorf("buffer %s: corrupt: %v", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.LockTimeout,
		MaxSize:         int(opts.MaxSize),
		InitialMmapSize: opts.InitialMmapSize,
		FreelistType:    bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("buffer %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if !opts.SkipCheck {
			for cerr := range tx.Check() {
				return fmt.Errorf("consistency check: %w", cerr)
			}
		}
		_, err := tx.CreateBucketIfNotExists(streamsBucket)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("buffer %s: corrupt: %w", path, err)
	}
	return db, nil
}

// Path is the buffer's file.
func (d *DB) Path() string { return d.path }

// Quarantined is the name a corrupt buffer was renamed to at Open, or "".
func (d *DB) Quarantined() string { return d.quarantined }

// Close closes the file.
func (d *DB) Close() error {
	if err := d.bolt.Close(); err != nil {
		return fmt.Errorf("buffer %s: close: %w", d.path, err)
	}
	return nil
}

// Size is the file's size in bytes.
func (d *DB) Size() int64 {
	var n int64
	_ = d.bolt.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Fsyncs is the number of fsyncs the buffer has made since Open.
func (d *DB) Fsyncs() int64 { return d.syncs.n.Load() }

// update runs fn in a write transaction, counting its fsyncs and, under
// SlowSyncEnv, delaying each of them.
func (d *DB) update(fn func(*bolt.Tx) error) error {
	before := d.fileSize()
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		d.slow.wait() // the data pages' fsync
		return nil
	})
	if err != nil {
		return err
	}
	d.slow.wait() // the meta page's fsync
	d.syncs.committed(d.fileSize() > before)
	return nil
}

func (d *DB) fileSize() int64 {
	fi, err := os.Stat(d.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Append commits recs in one transaction: one fsync pair however many there
// are. Each record gets the next sequence number of its stream.
func (d *DB) Append(recs []frame.Record) error {
	err := d.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(streamsBucket)
		buckets := map[string]*bolt.Bucket{}
		for _, r := range recs {
			b := buckets[r.Stream]
			if b == nil {
				var err error
				if b, err = root.CreateBucketIfNotExists([]byte(r.Stream)); err != nil {
					return fmt.Errorf("stream %q: %w", r.Stream, err)
				}
				b.FillPercent = 1.0 // keys are appended in order
				buckets[r.Stream] = b
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(makeKey(frame.Hour(r.Received), seq), encodeValue(r)); err != nil {
				return fmt.Errorf("stream %q: %w", r.Stream, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer commit: %w", err)
	}
	return nil
}

func makeKey(hour time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(hour.Unix()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func splitKey(k []byte) (hour time.Time, seq uint64) {
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0).UTC(), binary.BigEndian.Uint64(k[8:])
}

// Value format: version, kind, flags, received (Unix nanoseconds), data.
const (
	valueVersion    = 1
	valueHeader     = 11
	flagClockSynced = 1
)

func encodeValue(r frame.Record) []byte {
	v := make([]byte, valueHeader+len(r.Data))
	v[0] = valueVersion
	v[1] = byte(r.Kind)
	if r.ClockSynced {
		v[2] |= flagClockSynced
	}
	binary.BigEndian.PutUint64(v[3:], uint64(r.Received.UnixNano()))
	copy(v[valueHeader:], r.Data)
	return v
}

// decodeValue copies: bbolt's memory is only valid inside its transaction.
func decodeValue(stream string, v []byte) (frame.Record, error) {
	if len(v) < valueHeader || v[0] != valueVersion {
		return frame.Record{}, fmt.Errorf("stream %q: record of unknown format", stream)
	}
	return frame.Record{
		Stream:      stream,
		Kind:        frame.Kind(v[1]),
		ClockSynced: v[2]&flagClockSynced != 0,
		Received:    time.Unix(0, int64(binary.BigEndian.Uint64(v[3:]))).UTC(),
		Data:        append([]byte(nil), v[valueHeader:]...),
	}, nil
}
