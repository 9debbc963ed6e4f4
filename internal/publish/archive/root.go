package archive

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/practable/lablog/internal/record/frame"
)

// Root is an archive directory held open. Writers make their directories
// and files relative to the held descriptor, never through the path, so a
// drive unmounted mid-run cannot turn into a fresh tree on the SD card under
// the bare mount point; Check, run before every file is created and
// published, notices that the path no longer leads to the held directory.
//
// Check and Create may be called from several goroutines; Close only when
// no Writer of the Root is active.
type Root struct {
	path    string
	require string
	dir     *os.File
	id      dirID
}

// dirID identifies a directory: its inode, and its file system both by
// device number and by the file system's own id (ext4: from its UUID), since
// another drive mounted later may get the same device number.
type dirID struct {
	dev, ino uint64
	fsid     [2]int32
}

// OpenRoot checks path as CheckTarget does and holds it open.
func OpenRoot(path, require string) (*Root, error) {
	if err := CheckTarget(path, require); err != nil {
		return nil, err
	}
	dir, err := openDirAt(unix.AT_FDCWD, path, path, 0)
	if err != nil {
		return nil, &TargetError{Root: path, Reason: err.Error(), Err: ErrNoTarget, Cause: err}
	}
	r := &Root{path: path, require: require, dir: dir}
	if r.id, err = fdID(int(dir.Fd())); err != nil {
		dir.Close()
		return nil, &TargetError{Root: path, Reason: err.Error(), Err: ErrNoTarget, Cause: err}
	}
	// The drive may have gone between the check and the open.
	if err := r.Check(); err != nil {
		dir.Close()
		return nil, err
	}
	return r, nil
}

// Path returns the path the Root was opened with.
func (r *Root) Path() string { return r.path }

// Close releases the directory.
func (r *Root) Close() error { return r.dir.Close() }

// Check reports, as a *TargetError, whether the root can still take files:
// the path must still lead to the directory held open (not the bare mount
// point left by an unmount, nor another drive mounted there), which must
// still hold the marker or be a mount point as required, and be writable.
func (r *Root) Check() error {
	fail := func(kind, cause error, format string, args ...any) error {
		return &TargetError{Root: r.path, Reason: fmt.Sprintf(format, args...), Err: kind, Cause: cause}
	}
	fd := int(r.dir.Fd())
	now, err := pathID(r.path)
	if errors.Is(err, unix.ENOENT) {
		return fail(ErrNoTarget, err, "was removed; refusing to write to the SD card")
	}
	if err != nil {
		return fail(ErrNoTarget, err, "%v", err)
	}
	if now != r.id {
		return fail(ErrNotMounted, nil, "archive drive was removed or replaced (not the directory opened); refusing to write to the SD card")
	}
	switch r.require {
	case RequireMarker:
		var st unix.Stat_t
		if err := unix.Fstatat(fd, MarkerFile, &st, 0); err != nil {
			return fail(ErrNotMounted, err, "not mounted (no %s marker); refusing to write to the SD card", MarkerFile)
		}
	case RequireMountpoint:
		mounted, err := isMountPointFd(fd)
		if err != nil {
			return fail(ErrNoTarget, err, "%v", err)
		}
		if !mounted {
			return fail(ErrNotMounted, nil, "not mounted (not a mount point); refusing to write to the SD card")
		}
	}
	if err := unix.Faccessat(fd, ".", unix.W_OK, 0); err != nil {
		return fail(ErrReadOnly, err, "not writable: %v", err)
	}
	return nil
}

// Create starts the file of stream's hour in the held directory, after a
// Check. The temporary file is named .<stream>-<hour>-<random>.tmp, since
// the final name needs the last sequence number; CleanTemp removes
// leftovers.
func (r *Root) Create(stream string, hour time.Time, opts Options) (*Writer, error) {
	hour = frame.Hour(hour)
	if !ValidStream(stream) {
		return nil, fmt.Errorf("archive: invalid stream name %q", stream)
	}
	wrap := func(err error) error { return fmt.Errorf("archive %s: %w", label(stream, hour), err) }
	if opts.BufferID != "" && !ValidBufferID(opts.BufferID) {
		return nil, wrap(fmt.Errorf("invalid buffer id %q (want 16 lower-case hex digits)", opts.BufferID))
	}
	if err := r.Check(); err != nil {
		return nil, wrap(err)
	}
	dir, err := r.partition(stream, hour)
	if err != nil {
		return nil, wrap(err)
	}
	f, tmp, err := createTemp(dir, "."+stream+"-"+hour.Format(hourLayout)+"-")
	if err != nil {
		dir.Close()
		return nil, wrap(err)
	}
	return newWriter(r, dir, f, tmp, stream, hour, opts), nil
}

// partition opens the stream=/date= directory of stream's hour, making what
// is missing one level at a time relative to the held descriptors, and
// fsyncing each new directory's parent so the new entries survive a power
// cut along with the file about to be written in them.
func (r *Root) partition(stream string, hour time.Time) (*os.File, error) {
	parent := r.dir
	path := r.path
	for _, name := range []string{"stream=" + stream, "date=" + hour.Format(dateLayout)} {
		path = filepath.Join(path, name)
		pfd := int(parent.Fd())
		err := unix.Mkdirat(pfd, name, DirMode)
		created := err == nil
		if err != nil && !errors.Is(err, unix.EEXIST) {
			closeUnlessRoot(r, parent)
			return nil, &os.PathError{Op: "mkdirat", Path: path, Err: err}
		}
		if created {
			if err := parent.Sync(); err != nil {
				closeUnlessRoot(r, parent)
				return nil, err
			}
		}
		child, err := openDirAt(pfd, name, path, unix.O_NOFOLLOW)
		closeUnlessRoot(r, parent)
		if err != nil {
			return nil, err
		}
		if created {
			// DirMode whatever the umask.
			if err := child.Chmod(DirMode); err != nil {
				child.Close()
				return nil, err
			}
		}
		parent = child
	}
	return parent, nil
}

func closeUnlessRoot(r *Root, f *os.File) {
	if f != r.dir {
		f.Close()
	}
}

// openDirAt opens the directory name relative to dirfd; path names it in
// errors and in the returned file.
func openDirAt(dirfd int, name, path string, flags int) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// createTemp creates a new file prefix<random>.tmp in dir.
func createTemp(dir *os.File, prefix string) (*os.File, string, error) {
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		name := prefix + hex.EncodeToString(b[:]) + ".tmp"
		path := filepath.Join(dir.Name(), name)
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, FileMode)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, "", &os.PathError{Op: "create", Path: path, Err: err}
		}
		f := os.NewFile(uintptr(fd), path)
		// FileMode whatever the umask.
		if err := f.Chmod(FileMode); err != nil {
			f.Close()
			unix.Unlinkat(int(dir.Fd()), name, 0)
			return nil, "", err
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("create temporary file in %s: too many name collisions", dir.Name())
}

func fdID(fd int) (dirID, error) {
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err := unix.Fstat(fd, &st); err != nil {
		return dirID{}, err
	}
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return dirID{}, err
	}
	return dirID{dev: uint64(st.Dev), ino: uint64(st.Ino), fsid: fs.Fsid.Val}, nil
}

func pathID(path string) (dirID, error) {
	var st unix.Stat_t
	var fs unix.Statfs_t
	if err := unix.Stat(path, &st); err != nil {
		return dirID{}, err
	}
	if err := unix.Statfs(path, &fs); err != nil {
		return dirID{}, err
	}
	return dirID{dev: uint64(st.Dev), ino: uint64(st.Ino), fsid: fs.Fsid.Val}, nil
}

// isMountPointFd is isMountPoint for a held directory.
func isMountPointFd(fd int) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	if err := unix.Fstatat(fd, "..", &parent, 0); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}
