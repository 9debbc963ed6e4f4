// Package buffer is lablog's durable store on the SD card: a bbolt file that
// holds every record between its arrival and its publication in the archive.
//
// Identity: each buffer file gets a random id when it is created. A record's
// identity is (buffer id, stream, seq), where seq counts the stream's records
// in this buffer from 1. A fresh buffer (after a quarantine, a deleted file,
// a new card) therefore never repeats an identity that an archive file
// already holds, and the compactor can tell its records apart from older
// ones of the same stream and hour.
//
// Layout (format 2; see block.go for a block's bytes):
//
//	meta      format, id, created
//	seqs      stream -> last seq given out
//	blocks    one bucket per stream: hour|first seq -> block of records
//	legacy    the same, for records migrated from a format-1 buffer, whose
//	          identity is the archive's legacy one (no buffer id)
//	counts    group (kind|stream|hour) -> records and stored bytes, kept in
//	          the same transactions as the blocks, so the backlog is known
//	          without walking the file
//
// One commit writes one block per stream and hour it touches, compressed
// when that helps. Small blocks of an hour still being written are merged
// into larger ones as they accumulate (see append.go), which is what keeps
// the buffer near 30-40 bytes per realistic message.
package buffer

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/platform/logkey"
)

// ErrLocked is returned by Open when another process holds the buffer.
var ErrLocked = errors.New("locked by another process (is another lablog running?)")

// FormatVersion is the buffer's current file format.
const FormatVersion = 2

// ErrNewerFormat is returned by Open for a buffer written by a newer lablog
// (a downgrade). Such a file is sound, so it is neither quarantined nor
// touched: the newer lablog must archive it first.
var ErrNewerFormat = errors.New("written by a newer lablog")

var (
	metaBucket   = []byte("meta")
	seqsBucket   = []byte("seqs")
	blocksBucket = []byte("blocks")
	legacyBucket = []byte("legacy")
	countsBucket = []byte("counts")
	v1Bucket     = []byte("streams") // format 1: one key per record

	keyFormat  = []byte("format")
	keyID      = []byte("id")
	keyCreated = []byte("created")
)

// Options configure Open. The zero value of each field means its default.
type Options struct {
	// MaxSize caps the file; beyond it commits fail instead of filling the
	// card (and, on 32-bit ARM, instead of bbolt panicking past 2 GiB).
	// Default 1 GiB.
	MaxSize int64
	// InitialMmapSize maps this much up front, so a long read during
	// compaction never blocks commits on a remap. Default 64 MiB, capped
	// at MaxSize.
	InitialMmapSize int
	// LockTimeout bounds the wait for the file lock. Default 1 s.
	LockTimeout time.Duration
	// SkipCheck skips the page consistency check at open.
	SkipCheck bool
	Logger    *slog.Logger

	noSync bool // benchmarks of the format alone: never in production
}

// Defaults of the buffer, its writer and the configuration (config.Default
// is built from these).
const (
	DefaultMaxSize        = 1 << 30
	DefaultQueue          = 16384
	DefaultCommitInterval = 100 * time.Millisecond
)

func (o *Options) setDefaults() {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.InitialMmapSize == 0 {
		o.InitialMmapSize = 64 << 20
	}
	o.InitialMmapSize = int(min(int64(o.InitialMmapSize), o.MaxSize))
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
	id          string
	maxSize     int64
	quarantined string
	migrated    int64
	syncs       syncCounter
	log         *slog.Logger

	wmu   sync.Mutex         // one writing operation at a time (bbolt's lock is per transaction)
	tails map[groupKey]*tail // small blocks waiting to be merged; under wmu
	mu    sync.Mutex
	used  int64        // stored bytes of all blocks (the sum of counts)
	sides []*SideFile  // closed with the buffer
	freed atomic.Int64 // Settle and SetAside calls that succeeded
}

// Open opens or creates the buffer at path. A file that is torn, that bbolt
// cannot open or that fails its consistency check is renamed aside
// (quarantined) and a fresh buffer is started, so a damaged card never stops
// the recording; the caller must report Quarantined loudly. A format-1
// buffer is converted in place (see migrate.go). A buffer locked by another
// process is an error wrapping ErrLocked.
func Open(path string, opts Options) (*DB, error) {
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("buffer %s: %w", path, err)
	}
	d := &DB{path: path, maxSize: opts.MaxSize, log: opts.Logger}
	err := d.open(opts)
	if err == nil {
		return d, nil
	}
	if errors.Is(err, ErrLocked) || errors.Is(err, os.ErrPermission) || errors.Is(err, ErrNewerFormat) {
		return nil, err
	}
	aside := quarantineName(path, time.Now())
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("buffer %s: %w (and could not quarantine it: %v)", path, err, rerr)
	}
	opts.Logger.Error("buffer was corrupt: quarantined it and started a fresh one",
		logkey.Path, path, "quarantined", aside, logkey.Err, err)
	d = &DB{path: path, maxSize: opts.MaxSize, log: opts.Logger, quarantined: aside}
	if err := d.open(opts); err != nil {
		return nil, fmt.Errorf("buffer %s: fresh buffer after quarantine: %w", path, err)
	}
	return d, nil
}

// open validates, opens, checks, initialises or migrates the file.
func (d *DB) open(opts Options) (err error) {
	if fi, serr := os.Stat(d.path); serr == nil && fi.Mode().IsRegular() {
		if verr := validateFile(d.path); verr != nil {
			return fmt.Errorf("buffer %s: %w", d.path, verr)
		}
	}
	// bbolt reads the file through a memory map: turn a fault on a page
	// the checks above missed into a panic recovered below, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if d.bolt != nil {
				_ = d.bolt.Close()
				d.bolt = nil
			}
			err = fmt.Errorf("buffer %s: corrupt: %v", d.path, r)
		}
	}()
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{
		Timeout:         opts.LockTimeout,
		MaxSize:         int(opts.MaxSize),
		InitialMmapSize: opts.InitialMmapSize,
		FreelistType:    bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("buffer %s: %w", d.path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("buffer %s: %w", d.path, err)
	}
	d.bolt = db
	db.NoSync = opts.noSync
	if !opts.SkipCheck {
		// validateFile walked the tree: every page and key bbolt's check
		// reads through the memory map lies inside the file.
		err = db.View(func(tx *bolt.Tx) error {
			// Read to the end: the check goes on reading the map after its
			// first error, and would fault in the closed transaction.
			var first error
			releaseWhile(tx, func() {
				for cerr := range tx.Check() {
					if first == nil {
						first = fmt.Errorf("consistency check: %w", cerr)
					}
				}
			})
			return first
		})
		if err != nil {
			_ = db.Close()
			d.bolt = nil
			return fmt.Errorf("buffer %s: corrupt: %w", d.path, err)
		}
	}
	if err := d.initialise(); err != nil {
		_ = db.Close()
		d.bolt = nil
		return fmt.Errorf("buffer %s: %w", d.path, err)
	}
	if err := d.migrateV1(); err != nil {
		_ = db.Close()
		d.bolt = nil
		return fmt.Errorf("buffer %s: convert format 1: %w", d.path, err)
	}
	if err := d.loadCounts(); err != nil {
		return err
	}
	if err := d.FinishSettles(); err != nil {
		_ = db.Close()
		d.bolt = nil
		return fmt.Errorf("buffer %s: %w", d.path, err)
	}
	return nil
}

// initialise creates the buckets and the id of a new file, and reads the id
// of an existing one.
func (d *DB) initialise() error {
	return d.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{seqsBucket, blocksBucket, legacyBucket, countsBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if id := meta.Get(keyID); id != nil {
			f := meta.Get(keyFormat)
			if len(f) == 1 && f[0] > FormatVersion {
				return fmt.Errorf("buffer format %d, %w: this lablog reads format %d at most; "+
					"install that lablog (or a later one) again, or archive and move the buffer away first", f[0], ErrNewerFormat, FormatVersion)
			}
			if len(f) != 1 || f[0] != FormatVersion {
				return fmt.Errorf("buffer format %v, this lablog reads %d", f, FormatVersion)
			}
			d.id = hex.EncodeToString(id)
			return nil
		}
		id := make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return err
		}
		d.id = hex.EncodeToString(id)
		created := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
		for k, v := range map[string][]byte{string(keyFormat): {FormatVersion}, string(keyID): id, string(keyCreated): created} {
			if err := meta.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// ID is the buffer's random id: 16 hex digits, set when the file was created.
func (d *DB) ID() string { return d.id }

// Path is the buffer's file.
func (d *DB) Path() string { return d.path }

// Quarantined is the name a corrupt buffer was renamed to at Open, or "".
func (d *DB) Quarantined() string { return d.quarantined }

// Migrated is the number of format-1 records converted at Open.
func (d *DB) Migrated() int64 { return d.migrated }

// Close closes the file.
func (d *DB) Close() error {
	d.mu.Lock()
	sides := d.sides
	d.sides = nil
	d.mu.Unlock()
	var serr error
	for _, f := range sides {
		serr = errors.Join(serr, f.close())
	}
	if err := d.bolt.Close(); err != nil {
		return fmt.Errorf("buffer %s: close: %w", d.path, err)
	}
	return serr
}

// Size is the file's size in bytes.
func (d *DB) Size() int64 { return d.fileSize() }

// Used is the number of bytes the stored blocks take, a running count (the
// file itself never shrinks: bbolt reuses freed pages).
func (d *DB) Used() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

// MaxSize is the cap of the file.
func (d *DB) MaxSize() int64 { return d.maxSize }

// IsFull reports whether err is a commit refused because the file reached
// MaxSize.
func IsFull(err error) bool { return errors.Is(err, bolterrors.ErrMaxSizeReached) }

// IsDiskFull reports whether err is a commit that failed because the file
// system holding the buffer is full (or the user's quota is used up),
// however far the file is from MaxSize.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Fsyncs is the number of fsyncs the buffer has made since Open.
func (d *DB) Fsyncs() int64 { return d.syncs.n.Load() }

// update runs fn in a write transaction, counting its fsyncs. The
// FailFsync failpoint stands at each of the two fsyncs of a commit.
func (d *DB) update(fn func(*bolt.Tx) error) error {
	before := d.fileSize()
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return failpoint.Hit(FailFsync) // the data pages' fsync: an error fails the commit
	})
	if err != nil {
		return err
	}
	// The meta page's fsync: committed by now, so an injected error can
	// only be dropped; a delay, a pause or a kill act.
	_ = failpoint.Hit(FailFsync)
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
