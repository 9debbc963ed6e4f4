package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/practable/lablog/internal/platform/atomicfile"
)

// UpdateDir is where updates are dropped: in the boot partition's lablog/
// folder or at the top of the archive drive.
const UpdateDir = "lablog/update"

// SeenFile, in KeepDir, lists the update files already tried, by content:
// each is tried once, however often the machine boots with it in place
// (the boot partition is read-only, so the files stay where they are).
const SeenFile = "seen.json"

type seenEntry struct {
	File    string    `json:"file"`
	Outcome Outcome   `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Boot applies, in order of name, every *.deb in dirs (each a folder
// holding update files; missing ones are skipped) not tried before. It
// returns what it did; the error is the first failure's.
func Boot(ctx context.Context, dirs []string, o Options) ([]Result, error) {
	var debs []string
	for _, d := range dirs {
		found, _ := filepath.Glob(filepath.Join(d, "*.deb"))
		slices.Sort(found)
		debs = append(debs, found...)
	}
	seenPath := filepath.Join(o.KeepDir, SeenFile)
	seen := map[string]seenEntry{}
	if data, err := os.ReadFile(seenPath); err == nil {
		if err := json.Unmarshal(data, &seen); err != nil {
			return nil, fmt.Errorf("update: %s: %w", seenPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("update: %w", err)
	}
	var results []Result
	var first error
	for _, deb := range debs {
		id, err := fileID(deb)
		if err != nil {
			first = cmpErr(first, fmt.Errorf("update: %w", err))
			continue
		}
		if _, ok := seen[id]; ok {
			continue
		}
		res, err := Apply(ctx, deb, o)
		if ctx.Err() != nil {
			return results, ctx.Err() // stopped midway: try it again next time
		}
		results = append(results, res)
		first = cmpErr(first, err)
		seen[id] = seenEntry{File: deb, Outcome: res.Outcome, Reason: res.Reason, At: time.Now().UTC()}
		data, _ := json.MarshalIndent(seen, "", "  ")
		if err := os.MkdirAll(o.KeepDir, 0o755); err != nil {
			return results, fmt.Errorf("update: %w", err)
		}
		if err := writeFile(seenPath, data); err != nil {
			return results, fmt.Errorf("update: record %s as tried: %w", deb, err)
		}
	}
	return results, first
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// fileID is what makes an update file itself: its content and its
// signature's, so a signature put beside a refused file is tried again.
func fileID(deb string) (string, error) {
	h := sha256.New()
	for _, p := range []string{deb, deb + SigSuffix} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		s := sha256.Sum256(data)
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeFile replaces path with data: a power cut leaves the old or the new.
func writeFile(path string, data []byte) error { return atomicfile.WriteFile(path, data, 0o644) }
