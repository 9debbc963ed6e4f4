package upload

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LedgerDir is the folder, in the archive's root, that remembers what was
// uploaded: one subfolder per target (endpoint, bucket, prefix and site),
// one file per date partition, one line per uploaded file:
//
//	stream=spin30/date=2026-11-26/spin30-20261126T14-....parquet <sha256 hex>
//
// Lines are appended and fsynced once the bucket has confirmed the object's
// checksum. A power cut can tear the last line only; a torn line is ignored,
// and that file's next upload finds the object there with the same checksum
// and records it again, so nothing is uploaded twice. Kept on the drive with
// the files it describes: another drive has its own.
const LedgerDir = ".lablog-upload"

// ledger reads and appends the per-date files of one target.
type ledger struct {
	dir string // <root>/.lablog-upload/<target>
}

// targetID names a target's ledger folder: the site, for people, and a hash
// of where the files go, so a new bucket or prefix starts a new record.
func targetID(endpoint, bucket, prefix, site string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{endpoint, bucket, prefix, site}, "\n")))
	return site + "-" + hex.EncodeToString(h[:6])
}

// ledgerOf is the ledger of o's target on o's drive.
func ledgerOf(o Options) ledger {
	return ledger{dir: filepath.Join(o.Root, LedgerDir, targetID(o.Endpoint, o.Bucket, o.Prefix, o.Site))}
}

func (l ledger) path(date string) string { return filepath.Join(l.dir, date+".log") }

// load returns the files of date recorded as uploaded, with their SHA-256.
func (l ledger) load(date string) (map[string]string, error) {
	f, err := os.Open(l.path(date))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upload ledger: %w", err)
	}
	defer f.Close()
	done := map[string]string{}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A last line without its newline was torn by a power cut.
			break
		}
		rel, sum, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if ok && len(sum) == 64 && strings.HasPrefix(rel, "stream=") {
			done[rel] = sum
		}
	}
	return done, nil
}

// add records rel (of date) as uploaded with its SHA-256, durably.
func (l ledger) add(date, rel, sum string) error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("upload ledger: %w", err)
	}
	f, err := os.OpenFile(l.path(date), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("upload ledger: %w", err)
	}
	line := rel + " " + sum + "\n"
	// A line torn by a power cut must not swallow this one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if g, err := os.Open(l.path(date)); err == nil {
			if _, err := g.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
				line = "\n" + line
			}
			g.Close()
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("upload ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("upload ledger: %w", err)
	}
	return f.Close()
}

// Uploaded returns a check of whether the published file rel (relative to
// the archive root, slash-separated: stream=.../date=.../<name>) is in the
// ledger of o's target, for whoever deletes files from the drive: a file
// it does not confirm is not safely in the bucket and must stay. It reads
// the date's ledger file at each call.
func Uploaded(o Options) func(rel string) (bool, error) {
	l := ledgerOf(o)
	return func(rel string) (bool, error) {
		parts := strings.Split(rel, "/")
		date, ok := "", len(parts) == 3
		if ok {
			date, ok = strings.CutPrefix(parts[1], "date=")
		}
		if !ok {
			return false, fmt.Errorf("upload ledger: %q is not a published file's path", rel)
		}
		done, err := l.load(date)
		if err != nil {
			return false, err
		}
		_, up := done[rel]
		return up, nil
	}
}
