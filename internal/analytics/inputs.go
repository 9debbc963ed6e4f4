package analytics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// Window limits messages to those received (or, for files without a
// received time, sent: t) in [Since, Until); a zero bound is open.
type Window struct{ Since, Until time.Time }

// Contains reports whether t is inside w.
func (w Window) Contains(t time.Time) bool {
	return (w.Since.IsZero() || !t.Before(w.Since)) && (w.Until.IsZero() || t.Before(w.Until))
}

// maxLine bounds one line of a JSON-lines file: lablog keeps frames up to
// sources.read_limit (1 MiB by default); be generous.
const maxLine = 64 << 20

// ReadJSONL adds a JSON-lines file of frames (one frame per line, as a
// websocket logger writes them; blank lines skipped) to b. Frames are
// ordered by line; the window applies to each message's t.
func (b *Builder) ReadJSONL(r io.Reader, w Window) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var line int64
	for sc.Scan() {
		line++
		data := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		b.addFrameIn(data, line, w, nil)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// addFrameIn is AddFrame with a window on t and an optional override of the
// messages' user, exp, course and hardware (the old client's file names).
func (b *Builder) addFrameIn(data []byte, arrival int64, w Window, name *logName) {
	msgs := frame.Split(data)
	b.Stats.Frames++
	if len(msgs) > 1 {
		b.Stats.GluedFrames++
		b.Stats.GluedMessages += int64(len(msgs))
	}
	for _, fm := range msgs {
		if fm.Err != "" {
			b.Stats.Messages++
			b.Stats.Unparsed++
			continue
		}
		if fm.T != nil && !w.Contains(time.UnixMilli(*fm.T)) {
			continue
		}
		m := FromFrame(fm, arrival)
		if name != nil {
			m.User, m.Exp, m.Course, m.Hardware = &name.user, &name.exp, &name.course, &name.hardware
		}
		b.Add(m)
	}
}

// logName is what the old client's file names say.
type logName struct{ user, hardware, exp, course string }

// parseLogName reads "{user}-{hardware}-{exp}-{course}.json" or, with
// hardware "", "{user}-{exp}-{course}-adjacency.csv". User ids hold
// hyphens (UUIDs), the other parts do not, so the parts are cut from the
// right.
func parseLogName(name string) (logName, bool) {
	if base, ok := strings.CutSuffix(name, "-adjacency.csv"); ok {
		p := strings.Split(base, "-")
		if len(p) < 3 {
			return logName{}, false
		}
		n := len(p)
		return logName{user: strings.Join(p[:n-2], "-"), exp: p[n-2], course: p[n-1]}, true
	}
	if base, ok := strings.CutSuffix(name, ".json"); ok {
		p := strings.Split(base, "-")
		if len(p) < 4 {
			return logName{}, false
		}
		n := len(p)
		return logName{user: strings.Join(p[:n-3], "-"), hardware: p[n-3], exp: p[n-2], course: p[n-1]}, true
	}
	return logName{}, false
}

// ReadLogsDir adds the old Python client's folder: per-user logs
// "{user}-{hardware}-{exp}-{course}.json" (user, exp, course and hardware
// taken from the name, as the client did, so legacy {user, t, payload}
// lines count) and matrices "{user}-{exp}-{course}-adjacency.csv", which
// are added in: the client kept the matrix of what it had already
// converted and only the last message of the log, whose next step is new.
// Other files are skipped and returned by name.
func (b *Builder) ReadLogsDir(dir string, w Window) (skipped []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var arrival int64
	for _, name := range names {
		ln, ok := parseLogName(name)
		if !ok || Experiments[ln.exp] == nil {
			skipped = append(skipped, name)
			continue
		}
		path := filepath.Join(dir, name)
		if strings.HasSuffix(name, ".csv") {
			f, err := os.Open(path)
			if err != nil {
				return skipped, fmt.Errorf("logs: %w", err)
			}
			m, err := ReadCSV(f)
			f.Close()
			if err != nil {
				return skipped, fmt.Errorf("logs: %s: %w", name, err)
			}
			b.Import(Key{User: ln.user, Exp: ln.exp, Course: ln.course}, m)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return skipped, fmt.Errorf("logs: %w", err)
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			arrival++
			line = bytes.TrimRight(line, "\r")
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			b.addFrameIn(line, arrival, w, &ln)
		}
	}
	return skipped, nil
}
