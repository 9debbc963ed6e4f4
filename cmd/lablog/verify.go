package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/practable/lablog/internal/publish/archive"
)

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "DIR",
		"Check every Parquet file under DIR (an archive drive, or a copy of it): each file\nreads back, its rows match its name and footer, and no two files hold the same rows.\nExits non-zero on any problem, and for a folder with no files at all.")
	dir, err := parseOne(fs, args, "folder", stdout, stderr)
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("verify: %s is not a directory", dir)
	}
	files, problems := archive.VerifyTree(dir)
	for _, p := range problems {
		fmt.Fprintf(stdout, "FAIL %s: %v\n", p.Path, p.Err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("verify %s: %d problems in %d files", dir, len(problems), files)
	}
	if files == 0 {
		// An empty folder is most often a drive that is not mounted.
		hint := ""
		if _, err := os.Stat(filepath.Join(dir, archive.MarkerFile)); err != nil {
			hint = fmt.Sprintf(" and no %s marker: is the archive drive mounted?", archive.MarkerFile)
		}
		return fmt.Errorf("verify %s: no Parquet files%s", dir, hint)
	}
	fmt.Fprintf(stdout, "ok: %d files verified under %s\n", files, dir)
	return nil
}
