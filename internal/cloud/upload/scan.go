package upload

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
)

// file is one published archive file.
type file struct {
	rel    string // stream=<s>/date=<d>/<name>, slash-separated
	stream string
	date   string
	hour   time.Time
	size   int64
}

// dirState is what the last scan learnt of a stream=/date= folder: when
// every file in it was uploaded and the folder has not changed since (its
// mtime), it need not be read again.
type dirState struct {
	mtime    time.Time
	complete bool
	files    int // published files in it (uploaded, as it is complete)
}

// scanner finds the published files not yet uploaded. It reads a date's
// ledger only while it looks at that date's folders, and skips folders
// that were complete and unchanged, so memory and work stay small however
// many months the drive holds.
type scanner struct {
	root   string
	ledger ledger
	dirs   map[string]dirState
	// settle: a folder changed this recently may change again within the
	// file system's timestamp resolution; it is not marked complete yet.
	settle time.Duration
}

// scanResult is one pass over the archive.
type scanResult struct {
	pending []file
	// old are uploaded files of dates before the retention cut-off.
	old []file
}

// scan lists every published file not in the ledger (nor in extra, files
// recorded in memory only). Files of dates before cutoff that are uploaded
// are returned as old (for retention), when cutoff is set.
func (s *scanner) scan(extra map[string]bool, cutoff string) (scanResult, error) {
	var res scanResult
	start := time.Now()
	streams, err := os.ReadDir(s.root)
	if err != nil {
		return res, fmt.Errorf("upload: read archive: %w", err)
	}
	byDate := map[string][]string{} // date -> stream dirs to read
	for _, st := range streams {
		stream, ok := strings.CutPrefix(st.Name(), "stream=")
		if !ok || !st.IsDir() || !archive.ValidStream(stream) {
			continue
		}
		dates, err := os.ReadDir(filepath.Join(s.root, st.Name()))
		if err != nil {
			return res, fmt.Errorf("upload: read archive: %w", err)
		}
		for _, d := range dates {
			date, ok := strings.CutPrefix(d.Name(), "date=")
			if !ok || !d.IsDir() {
				continue
			}
			if _, err := time.Parse(time.DateOnly, date); err != nil {
				continue
			}
			rel := st.Name() + "/" + d.Name()
			info, err := d.Info()
			if err != nil {
				continue // gone since the listing
			}
			// An unchanged complete folder is skipped, unless retention may
			// have files in it to delete.
			if c, ok := s.dirs[rel]; ok && c.complete && c.mtime.Equal(info.ModTime()) && !(cutoff != "" && date < cutoff && c.files > 0) {
				continue
			}
			byDate[date] = append(byDate[date], stream)
		}
	}
	dates := make([]string, 0, len(byDate))
	for d := range byDate {
		dates = append(dates, d)
	}
	sort.Strings(dates)
	for _, date := range dates {
		done, err := s.ledger.load(date)
		if err != nil {
			return res, err
		}
		for _, stream := range byDate[date] {
			rel := "stream=" + stream + "/date=" + date
			dir := filepath.Join(s.root, filepath.FromSlash(rel))
			info, err := os.Stat(dir)
			if err != nil {
				continue
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				return res, fmt.Errorf("upload: read archive: %w", err)
			}
			complete, files := true, 0
			for _, e := range entries {
				name := e.Name()
				n, ok := archive.ParseFileName(name)
				if !ok || strings.HasPrefix(name, ".") || n.Stream != stream || !e.Type().IsRegular() {
					continue // temporary, set aside (.bad) or foreign files
				}
				files++
				f := file{rel: rel + "/" + name, stream: stream, date: date, hour: n.Hour}
				_, uploaded := done[f.rel]
				if uploaded || extra[f.rel] {
					if cutoff != "" && date < cutoff {
						res.old = append(res.old, f)
					}
					continue
				}
				fi, err := e.Info()
				if err != nil {
					continue
				}
				f.size = fi.Size()
				res.pending = append(res.pending, f)
				complete = false
			}
			s.dirs[rel] = dirState{mtime: info.ModTime(), complete: complete && start.Sub(info.ModTime()) > s.settle, files: files}
		}
	}
	return res, nil
}
