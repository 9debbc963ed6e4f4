package archive

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames from to to, failing with ErrExists when to exists.
// RENAME_NOREPLACE makes the check atomic; file systems without it (EINVAL)
// fall back to check-then-rename, which is safe with one compactor.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return ErrExists
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return renameCheck(from, to)
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}
