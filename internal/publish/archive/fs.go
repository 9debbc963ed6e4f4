package archive

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// renameCheck renames from to to inside dir unless to exists.
func renameCheck(dir *os.File, from, to string) error {
	fd := int(dir.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(fd, to, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return ErrExists
	} else if !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "stat", Path: filepath.Join(dir.Name(), to), Err: err}
	}
	if err := unix.Renameat(fd, from, fd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(dir.Name(), from), New: filepath.Join(dir.Name(), to), Err: err}
	}
	return nil
}
