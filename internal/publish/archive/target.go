package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/practable/lablog/internal/platform/atomicfile"
)

// MarkerFile is the file whose presence in the archive root proves the
// archive drive is mounted there (require = "marker").
const MarkerFile = ".lablog-archive"

// markerText says, to whoever finds the marker, what it is for.
const markerText = "lablog archive drive: lablog writes Parquet files here only while this file exists\n"

// WriteMarker makes dir an archive root for require = "marker": it writes
// MarkerFile there, owned by uid:gid (the service's user).
func WriteMarker(dir string, uid, gid int) error {
	f, err := atomicfile.Create(filepath.Join(dir, MarkerFile), 0o644)
	if err != nil {
		return fmt.Errorf("archive marker: %w", err)
	}
	defer f.Abort()
	if _, err := f.Write([]byte(markerText)); err != nil {
		return fmt.Errorf("archive marker: %w", err)
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("archive marker: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("archive marker: %w", err)
	}
	return nil
}

// What CheckTarget may require of the archive root.
const (
	RequireMarker     = "marker"
	RequireMountpoint = "mountpoint"
	RequireNone       = "none"
)

var (
	// ErrNoTarget: the archive root is missing or not a directory.
	ErrNoTarget = errors.New("archive directory unavailable")
	// ErrNotMounted: the drive is not mounted at the archive root.
	ErrNotMounted = errors.New("archive drive not mounted")
	// ErrReadOnly: the archive root cannot be written.
	ErrReadOnly = errors.New("archive not writable")
)

// TargetError says why the archive root cannot take files, in words fit for
// the status page. It wraps one of ErrNoTarget, ErrNotMounted, ErrReadOnly,
// and the system error (such as EROFS) when there is one.
type TargetError struct {
	Root   string
	Reason string
	Err    error // ErrNoTarget, ErrNotMounted or ErrReadOnly
	Cause  error // the system error, if any
}

func (e *TargetError) Error() string { return "archive " + e.Root + ": " + e.Reason }

func (e *TargetError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// CheckTarget reports whether root is a usable archive: an existing,
// writable directory that, depending on require, holds the marker file or is
// a mount point. It exists so an unmounted USB drive never makes lablog fill
// the SD card's empty mount directory.
func CheckTarget(root, require string) error {
	fail := func(kind error, cause error, format string, args ...any) error {
		return &TargetError{Root: root, Reason: fmt.Sprintf(format, args...), Err: kind, Cause: cause}
	}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail(ErrNoTarget, err, "does not exist")
	case err != nil:
		return fail(ErrNoTarget, err, "%v", err)
	case !fi.IsDir():
		return fail(ErrNoTarget, nil, "is not a directory")
	}
	switch require {
	case RequireMarker:
		if _, err := os.Stat(filepath.Join(root, MarkerFile)); err != nil {
			return fail(ErrNotMounted, err, "not mounted (no %s marker); refusing to write to the SD card", MarkerFile)
		}
	case RequireMountpoint:
		mounted, err := isMountPoint(root)
		if err != nil {
			return fail(ErrNoTarget, err, "%v", err)
		}
		if !mounted {
			return fail(ErrNotMounted, nil, "not mounted (not a mount point); refusing to write to the SD card")
		}
	case RequireNone:
	default:
		return fmt.Errorf("archive %s: unknown requirement %q (want %s, %s or %s)", root, require, RequireMarker, RequireMountpoint, RequireNone)
	}
	if err := unix.Access(root, unix.W_OK); err != nil {
		return fail(ErrReadOnly, err, "not writable: %v", err)
	}
	return nil
}

// isMountPoint reports whether dir is on another device than its parent.
// The parent is dir/.. as the kernel resolves it, so a symlinked root is
// judged by its target. Bind mounts of the same device are not detected.
func isMountPoint(dir string) (bool, error) {
	var st, parent syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false, err
	}
	if err := syscall.Stat(dir+"/..", &parent); err != nil {
		return false, err
	}
	// "/" is its own parent, and a mount point by definition.
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}

// FreeBytes returns the space available to lablog on root's file system.
func FreeBytes(root string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return 0, fmt.Errorf("archive %s: statfs: %w", root, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
