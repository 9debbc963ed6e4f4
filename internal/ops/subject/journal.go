package subject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// JournalFile is the unfinished erasure's plan and progress, in the data
// directory. It holds the user id in clear, so a re-run can finish the
// job, and is removed once the report is written.
const JournalFile = "subject-erase.json"

// FilePlan is one archive file the erasure rewrites, planned before any is
// touched so a re-run knows what the old file was after it is gone.
type FilePlan struct {
	Old       string `json:"old"` // stream=<s>/date=<d>/<name>, relative to the archive
	OldSHA256 string `json:"old_sha256"`
	OldRows   int64  `json:"old_rows"`
	Rows      int64  `json:"user_rows"` // the user's rows, removed
	New       string `json:"new,omitempty"`
	NewSHA256 string `json:"new_sha256,omitempty"`
	NewRows   int64  `json:"new_rows"`
	// Source is "drive" for a file of the archive, "bucket" for an object
	// whose drive copy is gone (rewritten from a download).
	Source     string `json:"source"`
	Done       bool   `json:"done"`        // new file published, old one removed (on the drive)
	BucketDone bool   `json:"bucket_done"` // new object there, old one deleted (or neither was)
}

// Journal is the erasure's durable state.
type Journal struct {
	User     string     `json:"user"`
	UserHash string     `json:"user_sha256"`
	Started  time.Time  `json:"started"`
	Archive  string     `json:"archive"`
	Planned  bool       `json:"planned"` // Files lists every drive file to rewrite
	Buffer   *int64     `json:"buffer_rows,omitempty"`
	Bucket   bool       `json:"bucket_planned"` // Files lists the bucket-only objects too
	Files    []FilePlan `json:"files"`
	Analytic bool       `json:"analytics_dropped"`
}

func loadJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("erase journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("erase journal %s: %w", path, err)
	}
	return &j, nil
}

// save replaces the journal atomically: a crash leaves the old or the new.
func (j *Journal) save(path string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, b, 0o600)
}

// writeAtomic writes data to path through a synced temporary file and a
// rename, then syncs the directory.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
