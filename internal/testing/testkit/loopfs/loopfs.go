// Package loopfs gives a test a small, real ext4 file system (a file
// formatted with mkfs.ext4 and loop-mounted), so "no space left on device"
// can be met the way a full SD card meets it. It needs root and mkfs.ext4;
// without them the test is skipped, saying why. Only tests import it.
package loopfs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount makes and mounts an ext4 file system of size bytes and returns
// its mount point; it is unmounted and removed when the test ends.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loopfs: a loop-mounted ext4 needs root (run the test as root to meet a real full file system)")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("loopfs: mkfs.ext4 not found (apt-get install e2fsprogs)")
	}
	base := t.TempDir()
	img, mnt := filepath.Join(base, "fs.img"), filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("loopfs: mkfs.ext4: %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("loopfs: cannot loop-mount (no loop devices in this container?): %v\n%s", err, out)
	}
	// Registered after TempDir's cleanup, so it runs first: unmount,
	// then the directory goes.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("loopfs: umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

// Fill writes a file in dir until the file system has no space left, and
// returns a func that deletes it, giving the space back.
func Fill(t testing.TB, dir string) (release func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4<<10)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	// Bounded: no more chunks than the file system has blocks.
	for i := uint64(0); ; i++ {
		if i > st.Blocks*uint64(st.Bsize)/uint64(len(chunk))+1 {
			t.Fatalf("loopfs: wrote %d chunks and the file system is not full", i)
		}
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("loopfs: fill: %v", err)
			}
			break
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("loopfs: fill: %v", err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("loopfs: release: %v", err)
		}
	}
}
