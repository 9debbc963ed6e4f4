// Package archive writes a stream's closed hour as one Parquet file, publishes
// it atomically into a Hive-style tree, and reads and verifies such files.
//
// Layout: <root>/stream=<stream>/date=<YYYY-MM-DD>/<stream>-<YYYYMMDD>T<HH>-<first>-<last>.parquet
// The stream and date are partition keys taken from the path by DuckDB,
// pyarrow and Spark, so they are not columns in the file.
package archive

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/practable/lablog/internal/frame"
)

// Format is the value of the lablog.format metadata key for this schema.
const Format = "1"

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
)

// Entry is one committed buffer record and its per-stream sequence number.
type Entry struct {
	Seq uint64
	Rec frame.Record
}

// Meta is what a file's footer says about its contents.
type Meta struct {
	Stream            string
	Hour              time.Time
	FirstSeq, LastSeq uint64
	Frames, Rows      int64
	Checksum          string // "sha256:<hex>", see Checksum
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
	// ErrDuplicate: the same (stream, seq, part) is in more than one file.
	ErrDuplicate = errors.New("duplicate rows across files")
)

const (
	hourLayout = "20060102T15" // in file names
	dateLayout = "2006-01-02"  // in date= directories
	seqWidth   = 20            // digits of the largest uint64, so names sort
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

// FileName returns the deterministic name of a stream's file for hour holding
// sequence numbers first to last.
func FileName(stream string, hour time.Time, first, last uint64) string {
	return fmt.Sprintf("%s-%s-%0*d-%0*d.parquet", stream, frame.Hour(hour).Format(hourLayout), seqWidth, first, seqWidth, last)
}

// ParseFileName reverses FileName. The stream may itself contain '-', so the
// name is read from the right.
func ParseFileName(name string) (stream string, hour time.Time, first, last uint64, ok bool) {
	rest, found := strings.CutSuffix(name, ".parquet")
	if !found {
		return "", time.Time{}, 0, 0, false
	}
	parts := strings.Split(rest, "-")
	n := len(parts)
	if n < 4 || len(parts[n-1]) != seqWidth || len(parts[n-2]) != seqWidth {
		return "", time.Time{}, 0, 0, false
	}
	var err error
	if last, err = strconv.ParseUint(parts[n-1], 10, 64); err != nil {
		return "", time.Time{}, 0, 0, false
	}
	if first, err = strconv.ParseUint(parts[n-2], 10, 64); err != nil {
		return "", time.Time{}, 0, 0, false
	}
	if hour, err = time.Parse(hourLayout, parts[n-3]); err != nil {
		return "", time.Time{}, 0, 0, false
	}
	stream = strings.Join(parts[:n-3], "-")
	if !ValidStream(stream) || first > last {
		return "", time.Time{}, 0, 0, false
	}
	return stream, hour, first, last, true
}

// label names a stream's hour in error messages: "spin30 2026-11-26T14".
func label(stream string, hour time.Time) string {
	return stream + " " + frame.Hour(hour).Format("2006-01-02T15")
}
