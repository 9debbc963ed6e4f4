package main

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/drive"
)

// The command asks before erasing and does nothing without a "yes"; the
// checks themselves are tested in internal/publish/drive.
func TestDriveInitConfirms(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	sys := t.TempDir()
	for f, v := range map[string]string{"class/block/sdx/dev": "8:0", "class/block/sdx/size": "2048"} {
		p := filepath.Join(sys, f)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte(v), 0o644)
	}
	proc := t.TempDir()
	_ = os.MkdirAll(filepath.Join(proc, "self"), 0o755)
	_ = os.WriteFile(filepath.Join(proc, "self/mountinfo"), nil, 0o644)
	var ran []string
	oldSys, oldRun, oldIn, oldEUID := driveSystem, driveRunner, driveStdin, driveEUID
	t.Cleanup(func() { driveSystem, driveRunner, driveStdin, driveEUID = oldSys, oldRun, oldIn, oldEUID })
	driveSystem = &drive.System{Sys: sys, Proc: proc, IsBlock: func(string) bool { return true }}
	driveRunner = func(_ context.Context, _, name string, _ ...string) ([]byte, error) {
		ran = append(ran, name)
		return nil, nil
	}
	driveEUID = func() int { return 0 }

	driveStdin = strings.NewReader("no\n")
	var out bytes.Buffer
	err = run(context.Background(), []string{"drive", "init", "--user", me.Username, "/dev/sdx"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "not confirmed") || len(ran) > 0 {
		t.Errorf("without yes: %v, ran %v", err, ran)
	}
	if !strings.Contains(out.String(), "ERASES everything on /dev/sdx") {
		t.Errorf("no warning: %s", out.String())
	}
	driveEUID = func() int { return 1000 }
	if err := run(context.Background(), []string{"drive", "init", "--yes", "--user", me.Username, "/dev/sdx"}, &out, &out); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("not root: %v", err)
	}
	if err := run(context.Background(), []string{"drive", "init", "--user", "no-such-user-xyz", "/dev/sdx"}, &out, &out); err == nil {
		t.Error("unknown user accepted")
	}
	if err := run(context.Background(), []string{"drive"}, &out, &out); err == nil {
		t.Error("no subcommand accepted")
	}
}

// drive mark turns a folder into an archive root the compactor accepts
// under require: marker, with the marker owned by the folder's owner.
func TestDriveMark(t *testing.T) {
	dir := t.TempDir()
	if err := archive.CheckTarget(dir, archive.RequireMarker); err == nil {
		t.Fatal("an unmarked folder passed require: marker")
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // as root, prove the owner is the folder's, not ours
		uid, gid = 4321, 4322
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCmd(t, "drive", "mark", dir)
	if err != nil {
		t.Fatalf("drive mark: %v\n%s", err, out)
	}
	if err := archive.CheckTarget(dir, archive.RequireMarker); err != nil {
		t.Errorf("a marked folder fails require: marker: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, archive.MarkerFile))
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Sys().(*syscall.Stat_t); int(s.Uid) != uid || int(s.Gid) != gid {
		t.Errorf("marker owned by %d:%d, want the folder's %d:%d", s.Uid, s.Gid, uid, gid)
	}
	if _, err := runCmd(t, "drive", "mark", filepath.Join(dir, archive.MarkerFile)); err == nil {
		t.Error("drive mark accepted a file")
	}
}
