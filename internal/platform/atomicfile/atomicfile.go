// Package atomicfile publishes files so that a crash or power cut at any
// moment leaves the path holding either its old content or the complete new
// one, never a torn or empty file, and the new content survives once Commit
// has returned.
//
// The one policy: write a temporary file .<name>.<random>.tmp in the same
// folder, fsync it, set the given mode, rename it over the path, fsync the
// folder. The temporary file is removed on any failure, and one left by a
// crashed writer is removed by the next write of the same path.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/practable/lablog/internal/platform/failpoint"
)

// Failpoints at each step of Commit, for crash tests.
const (
	FailAfterWrite     = "atomicfile-after-write"      // data written, not synced
	FailAfterFileSync  = "atomicfile-after-file-fsync" // synced, not renamed
	FailAfterRename    = "atomicfile-after-rename"     // renamed, folder not synced
	FailBeforeDirSync  = "atomicfile-before-dir-fsync" // folder open, about to sync
	tempSuffix         = ".tmp"
	tempRandomSuffixes = ".*" + tempSuffix
)

// File is a new content for a path, being written. Write to it, then Commit
// to publish it or Abort to drop it; `defer f.Abort()` is the idiom, since
// Abort after Commit does nothing.
type File struct {
	path string
	perm fs.FileMode
	f    *os.File
	done bool
}

// Create starts replacing path with a file of mode perm (exactly perm: the
// umask does not apply). The folder must exist.
func Create(path string, perm fs.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStale(dir, base)
	var lerr error
	// A concurrent writer's removeStale may lock the new file between its
	// creation and our lock (and remove it): then start again, a few times.
	for range 3 {
		f, err := os.CreateTemp(dir, TempPattern(base))
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		// Held until the file is renamed or removed: it tells a later writer
		// of the same path that this temporary file is not stale.
		if lerr = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); lerr == nil {
			return &File{path: path, perm: perm, f: f}, nil
		}
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	return nil, fmt.Errorf("write %s: lock temporary file: %w", path, lerr)
}

// TempPattern is the os.CreateTemp pattern of the temporary files for a file
// named base: hidden, and ending in .tmp, so readers of a folder can skip them.
func TempPattern(base string) string { return "." + base + tempRandomSuffixes }

// IsTemp reports whether name is the name of such a temporary file.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, tempSuffix)
}

// removeStale removes the temporary files of base that no live writer holds:
// those left by a writer that crashed.
func removeStale(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".*"+tempSuffix))
	for _, m := range matches {
		f, err := os.Open(m)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			_ = os.Remove(m)
		}
		_ = f.Close()
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Name is the path being replaced.
func (f *File) Name() string { return f.path }

// Write appends to the new content.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", f.path, err)
	}
	return n, nil
}

// Chown gives the new file to uid:gid before it is published, so it never
// appears under the path with the wrong owner.
func (f *File) Chown(uid, gid int) error {
	if err := f.f.Chown(uid, gid); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Commit publishes the new content: fsync, mode, rename over the path, fsync
// of the folder. On an error before the rename the path is untouched and the
// temporary file removed; an error from the folder's fsync means the new
// content is in place but may not survive a power cut.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	if err := f.commit(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

func (f *File) commit() error {
	if err := failpoint.Hit(FailAfterWrite); err != nil {
		return err
	}
	if err := f.f.Chmod(f.perm); err != nil {
		return err
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	if err := failpoint.Hit(FailAfterFileSync); err != nil {
		return err
	}
	// Renamed before Close, so the lock is held until the name is gone.
	if err := os.Rename(f.f.Name(), f.path); err != nil {
		return err
	}
	f.done = true
	cerr := f.f.Close()
	if err := failpoint.Hit(FailAfterRename); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		return err
	}
	return cerr
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder: %w", err)
	}
	defer d.Close()
	if err := failpoint.Hit(FailBeforeDirSync); err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync folder: %w", err)
	}
	return nil
}

// Abort drops the new content and removes the temporary file. It does
// nothing after Commit or a previous Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	_ = os.Remove(f.f.Name()) // before Close: a writer that sees it unlocked finds it gone
	_ = f.f.Close()
}

// WriteFile replaces path with data, atomically and durably, with mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}
