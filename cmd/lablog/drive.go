package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/drive"
)

// Hooks for tests.
var (
	driveStdin  io.Reader = os.Stdin
	driveSystem           = &drive.System{}
	driveRunner drive.Runner
	driveEUID   = os.Geteuid
)

// cmdDrive prepares a USB drive as the archive: lablog drive init DEVICE,
// or lablog drive mark DIR for a filesystem made some other way.
func cmdDrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "mark" {
		return cmdDriveMark(args[1:], stdout, stderr)
	}
	fs := newFlags("drive init", "[--yes] [--user lablog] DEVICE",
		"Make a USB drive (e.g. /dev/sda) lablog's archive drive: ERASES it, makes one ext4\npartition labelled "+drive.Label+" owned by --user, with the archive marker. Needs root.")
	yes := fs.Bool("yes", false, "erase without asking")
	owner := fs.String("user", "lablog", "`user` that owns the archive (the service's)")
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && isHelp(args[0]) {
			fs.SetOutput(stdout)
			fs.Usage()
			return errHelp
		}
		return usageError(fs, stderr, "want: lablog drive init DEVICE, or lablog drive mark DIR")
	}
	device, err := parseOne(fs, args[1:], "device (e.g. /dev/sda)", stdout, stderr)
	if err != nil {
		return err
	}
	d, err := driveSystem.Check(device)
	if err != nil {
		return fmt.Errorf("drive init: %w", err)
	}
	u, err := user.Lookup(*owner)
	if err != nil {
		return fmt.Errorf("drive init: %w (is lablog installed? lablog install creates the user)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if driveEUID() != 0 {
		return errors.New("drive init: needs root: sudo lablog drive init " + device)
	}
	fmt.Fprintf(stdout, "This ERASES everything on %s and makes it lablog's archive drive\n(one ext4 partition labelled %s, owned by %s).\n", d, drive.Label, *owner)
	if !*yes {
		fmt.Fprint(stdout, "Type yes to go on: ")
		line, _ := bufio.NewReader(driveStdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("drive init: not confirmed, nothing changed")
		}
	}
	if err := drive.Init(ctx, driveRunner, d, uid, gid, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %s is the archive drive. On the appliance it is mounted at /media/lablog when plugged in\n(now: sudo systemctl start media-lablog.mount).\n", drive.PartitionPath(d.Path))
	return nil
}

// cmdDriveMark writes the archive marker into a folder: the root of a drive
// formatted some other way, or a disk image being built. The marker gets the
// folder's owner, which should be the service's user.
func cmdDriveMark(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("drive mark", "DIR",
		"Make DIR (the root of a mounted drive, or a folder that becomes one) an archive root\nfor archive.require: marker, by writing the marker file "+archive.MarkerFile+" there, owned\nby DIR's owner (chown DIR to the service's user first). Erases nothing.")
	dir, err := parseOne(fs, args, "folder", stdout, stderr)
	if err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("drive mark: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok {
		return fmt.Errorf("drive mark: %s is not a folder", dir)
	}
	if err := archive.WriteMarker(dir, int(sys.Uid), int(sys.Gid)); err != nil {
		return fmt.Errorf("drive mark: %w", err)
	}
	fmt.Fprintf(stdout, "marked %s as an archive root (%s)\n", dir, filepath.Join(dir, archive.MarkerFile))
	return nil
}
