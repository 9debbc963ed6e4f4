// Package archive writes a stream's closed hour as one Parquet file, publishes
// it atomically into a Hive-style tree, and reads and verifies such files.
//
// Layout: <root>/stream=<stream>/date=<YYYY-MM-DD>/<stream>-<YYYYMMDD>T<HH>-<bufferid>-<first>-<last>.parquet
// (legacy files, without buffer identity, lack the -<bufferid> part). The
// stream and date are partition keys taken from the path by DuckDB, pyarrow
// and Spark, so they are not columns in the file.
//
// A record's identity is (buffer id, stream, seq): a new buffer gets a new
// random id and restarts its seqs at 1, so equal seqs under different buffer
// ids are different records.
package archive

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// Format is the value of the lablog.format metadata key of the files this
// build writes. Format 2 added the buffer_id column and lablog.buffer_id;
// format 3 the statement columns (query, verb, object_id, graph_node,
// level, version). Files of formats 1 and 2 are still read and verified.
const (
	Format   = "3"
	FormatV2 = "2"
	FormatV1 = "1"
)

// Published files hold student data and may sit on a multi-user server:
// they are for the service's user and its group (an admin who copies them
// off joins the group), never for other users. New files take the
// process's group.
const (
	FileMode = 0o640
	DirMode  = 0o750
)

// Metadata keys stored in every file's footer.
const (
	KeyStream   = "lablog.stream"
	KeyHour     = "lablog.hour"
	KeyFirstSeq = "lablog.first_seq"
	KeyLastSeq  = "lablog.last_seq"
	KeyFrames   = "lablog.frames"
	KeyRows     = "lablog.rows"
	KeyChecksum = "lablog.checksum"
	KeyFormat   = "lablog.format"
	KeyBufferID = "lablog.buffer_id" // format 2 on; "" for legacy records
	// KeyRevision counts rewrites that removed rows (a subject's erasure):
	// absent or "0" in a file as compacted. A rewritten file gets the next
	// revision in its name too, so it never takes the name of the file it
	// replaces, and a copy of the old one elsewhere is told apart.
	KeyRevision = "lablog.revision"
)

// Entry is one committed buffer record and its per-stream sequence number.
type Entry struct {
	Seq uint64
	Rec frame.Record
}

// Meta is what a file's footer says about its contents.
type Meta struct {
	Format            string // Format or FormatV1
	Stream            string
	Hour              time.Time
	BufferID          string // "" in format 1 files and for legacy records
	FirstSeq, LastSeq uint64
	Frames, Rows      int64
	Checksum          string // "sha256:<hex>", see Checksum
	Revision          int    // 0 as compacted; n after n rewrites
}

// Name returns the name the metadata gives the file.
func (m Meta) Name() Name {
	return Name{Stream: m.Stream, Hour: m.Hour, BufferID: m.BufferID, First: m.FirstSeq, Last: m.LastSeq, Revision: m.Revision}
}

var (
	// ErrExists: the file Publish would create is already there; verify it.
	ErrExists = errors.New("archive file already exists")
	// ErrEmpty: Publish was called without any entry.
	ErrEmpty = errors.New("no entries to archive")
	// ErrCorrupt: the file cannot be read as Parquet (truncated, garbled).
	ErrCorrupt = errors.New("corrupt parquet file")
	// ErrMetadata: a lablog.* key is missing or malformed, or the schema is not ours.
	ErrMetadata = errors.New("bad lablog metadata")
	// ErrMismatch: rows, file name, directory and metadata disagree.
	ErrMismatch = errors.New("archive file inconsistent")
	// ErrChecksum: the frames rebuilt from the rows do not hash to lablog.checksum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrDuplicate: the same (buffer id, stream, seq, part) is in more than one file.
	ErrDuplicate = errors.New("duplicate rows across files")
)

const (
	hourLayout = "20060102T15" // in file names
	dateLayout = "2006-01-02"  // in date= directories
	seqWidth   = 20            // digits of the largest uint64, so names sort

	bufferIDLen = 16 // hex digits of a buffer id
)

// ValidStream reports whether s can name a stream's directory and files:
// letters, digits, '-', '_' and '.', not starting with '.' (hidden files are
// temporary ones).
func ValidStream(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// PartitionDir returns the directory that holds a stream's files of the day
// of hour.
func PartitionDir(root, stream string, hour time.Time) string {
	return filepath.Join(root, "stream="+stream, "date="+frame.Hour(hour).Format(dateLayout))
}

// Name is what a file's name says: whose records it holds and which.
// BufferID is "" for legacy files (format 1, and v1 buffer records migrated
// since), which had no buffer identity.
type Name struct {
	Stream      string
	Hour        time.Time
	BufferID    string
	First, Last uint64
	Revision    int // see KeyRevision; 0 has no part in the name
}

// FileName returns the deterministic name of the file holding n's records:
// <stream>-<YYYYMMDD>T<HH>-<bufferid>-<first>-<last>.parquet, or without the
// buffer id part when it is "", and with -r<revision> before .parquet when
// the file was rewritten.
func FileName(n Name) string {
	id := ""
	if n.BufferID != "" {
		id = n.BufferID + "-"
	}
	rev := ""
	if n.Revision > 0 {
		rev = "-r" + strconv.Itoa(n.Revision)
	}
	return fmt.Sprintf("%s-%s-%s%0*d-%0*d%s.parquet", n.Stream, frame.Hour(n.Hour).Format(hourLayout), id, seqWidth, n.First, seqWidth, n.Last, rev)
}

// parseRevision reads a name's last part as -r<n> (n >= 1, no leading
// zero); a seq has 20 digits and no letter, so the two cannot be confused.
func parseRevision(part string) (int, bool) {
	digits, ok := strings.CutPrefix(part, "r")
	if !ok || digits == "" || digits[0] == '0' || len(digits) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n > 0
}

// ParseFileName reverses FileName. The stream may itself contain '-', so the
// name is read from the right: two seqs, then either an hour (legacy) or a
// buffer id and an hour. An hour has an upper-case 'T' and a buffer id is
// lower-case hex, so the two forms cannot be confused.
func ParseFileName(name string) (Name, bool) {
	rest, found := strings.CutSuffix(name, ".parquet")
	if !found {
		return Name{}, false
	}
	parts := strings.Split(rest, "-")
	var v Name
	if rev, ok := parseRevision(parts[len(parts)-1]); ok {
		v.Revision, parts = rev, parts[:len(parts)-1]
	}
	n := len(parts)
	if n < 4 || len(parts[n-1]) != seqWidth || len(parts[n-2]) != seqWidth {
		return Name{}, false
	}
	var err error
	if v.Last, err = strconv.ParseUint(parts[n-1], 10, 64); err != nil {
		return Name{}, false
	}
	if v.First, err = strconv.ParseUint(parts[n-2], 10, 64); err != nil {
		return Name{}, false
	}
	head := parts[:n-2]
	if id := head[len(head)-1]; ValidBufferID(id) {
		if len(head) < 3 {
			return Name{}, false
		}
		v.BufferID, head = id, head[:len(head)-1]
	}
	if v.Hour, err = time.Parse(hourLayout, head[len(head)-1]); err != nil {
		return Name{}, false
	}
	v.Stream = strings.Join(head[:len(head)-1], "-")
	if !ValidStream(v.Stream) || v.First > v.Last {
		return Name{}, false
	}
	return v, true
}

// ValidBufferID reports whether s is a buffer id: 16 lower-case hex digits
// (8 random bytes).
func ValidBufferID(s string) bool {
	if len(s) != bufferIDLen {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// label names a stream's hour in error messages: "spin30 2026-11-26T14".
func label(stream string, hour time.Time) string {
	return stream + " " + frame.Hour(hour).Format("2006-01-02T15")
}
