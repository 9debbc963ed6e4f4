package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Problem is one thing wrong in an archive tree.
type Problem struct {
	Path string
	Err  error
}

func (p Problem) String() string { return p.Err.Error() }

// isTemp reports whether name is a writer's temporary file.
func isTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") }

// File is a published archive file.
type File struct {
	Path string
	Size int64
}

// Files lists the published files under root in lexical order: every
// Parquet file, writers' temporary files aside. Whoever needs the archive's
// files asks here rather than walking the layout itself. A folder that
// cannot be read is an error, except ext4's root-only lost+found.
func Files(root string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && d.Name() == "lost+found" && filepath.Dir(path) == root {
				return fs.SkipDir
			}
			return err
		}
		if d.IsDir() || isTemp(d.Name()) || !strings.HasSuffix(d.Name(), ".parquet") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, File{Path: path, Size: info.Size()})
		return nil
	})
	if err != nil {
		return files, fmt.Errorf("archive files under %s: %w", root, err)
	}
	return files, nil
}

// FilesOfDay lists the published files of every stream in day's UTC date
// partitions.
func FilesOfDay(root string, day time.Time) []File {
	paths, _ := filepath.Glob(filepath.Join(root, "stream=*", "date="+day.UTC().Format(dateLayout), "*.parquet"))
	var files []File
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && !isTemp(filepath.Base(p)) {
			files = append(files, File{Path: p, Size: st.Size()})
		}
	}
	return files
}

// VerifyTree verifies every published file under root and checks that each
// sits in the stream=/date= directory its metadata names and that no
// (buffer id, stream, seq, part) is in two files: equal seqs from different
// buffers are different records. Temporary files are ignored.
func VerifyTree(root string) (files int, problems []Problem) {
	add := func(path string, err error) { problems = append(problems, Problem{Path: path, Err: err}) }
	byStream := map[origin][]span{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			add(path, err)
			return nil
		}
		if d.IsDir() || isTemp(d.Name()) || !strings.HasSuffix(d.Name(), ".parquet") {
			return nil
		}
		files++
		m, err := Verify(path)
		if err != nil {
			add(path, err)
			return nil
		}
		if err := checkPlace(root, path, m); err != nil {
			add(path, err)
			return nil
		}
		o := origin{m.BufferID, m.Stream}
		byStream[o] = append(byStream[o], span{path, m.FirstSeq, m.LastSeq})
		return nil
	})
	if err != nil {
		add(root, err)
	}
	streams := make([]origin, 0, len(byStream))
	for o := range byStream {
		streams = append(streams, o)
	}
	sort.Slice(streams, func(i, j int) bool {
		a, b := streams[i], streams[j]
		return a.stream < b.stream || a.stream == b.stream && a.bufferID < b.bufferID
	})
	for _, s := range streams {
		problems = append(problems, duplicates(byStream[s])...)
	}
	return files, problems
}

// checkPlace checks that path is root/stream=<stream>/date=<date>/<name>.
func checkPlace(root, path string, m Meta) error {
	want := filepath.Join(PartitionDir(root, m.Stream, m.Hour), FileName(m.Name()))
	if filepath.Clean(path) != want {
		return fmt.Errorf("%s: %w: metadata (stream %s, hour %s) places it at %s", path, ErrMismatch, m.Stream, m.Hour.Format("2006-01-02T15"), want)
	}
	return nil
}

// origin is where a file's seqs come from: one buffer's stream.
type origin struct{ bufferID, stream string }

type span struct {
	path        string
	first, last uint64
}

// duplicates finds rows of one buffer's stream present in two files. Sequence ranges
// of different files rarely overlap (late frames can interleave), so only
// files in an overlapping cluster are read, keeping memory small.
func duplicates(spans []span) []Problem {
	sort.Slice(spans, func(i, j int) bool { return spans[i].first < spans[j].first })
	var problems []Problem
	for i := 0; i < len(spans); {
		j, end := i+1, spans[i].last
		for j < len(spans) && spans[j].first <= end {
			end = max(end, spans[j].last)
			j++
		}
		if j-i > 1 {
			problems = append(problems, clusterDuplicates(spans[i:j])...)
		}
		i = j
	}
	return problems
}

func clusterDuplicates(spans []span) []Problem {
	type key struct {
		seq  int64
		part int32
	}
	seen := map[key]string{}
	var problems []Problem
	for _, s := range spans {
		count := map[string]int{} // other file -> duplicated rows
		firstDup := map[string]key{}
		_, err := scan(s.path, func(r *Row) error {
			k := key{r.Seq, r.Part}
			if other, ok := seen[k]; ok {
				if count[other] == 0 {
					firstDup[other] = k
				}
				count[other]++
				return nil
			}
			seen[k] = s.path
			return nil
		})
		if err != nil {
			problems = append(problems, Problem{s.path, err})
			continue
		}
		for other, n := range count {
			k := firstDup[other]
			problems = append(problems, Problem{s.path, fmt.Errorf("%s: %w: %d rows also in %s (first: seq %d part %d)", s.path, ErrDuplicate, n, other, k.seq, k.part)})
		}
	}
	return problems
}

// CleanTemp removes writers' temporary files left under root by a crash.
// Call it only when no Writer is active on root.
func CleanTemp(root string) (removed int, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Only our partition folders hold temporary files; ext4's root-only
		// lost+found must not make the walk fail.
		if d.IsDir() && path != root && filepath.Dir(path) == root && !strings.HasPrefix(d.Name(), "stream=") {
			return fs.SkipDir
		}
		if d.Type().IsRegular() && isTemp(d.Name()) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("archive %s: clean temporary files: %w", root, err)
	}
	return removed, nil
}
