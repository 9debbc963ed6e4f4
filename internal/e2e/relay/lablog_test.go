package relay

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// lablogProc is the real `lablog run` with a config of the test's making.
type lablogProc struct {
	t       *testing.T
	dir     string
	cfg     string
	buf     string
	archive string
	status  int
	p       *proc
	// overflows counts, by stream, the Overflow records lablog wrote: the
	// marks of frames it dropped itself (filled in by records).
	overflows map[string]int
}

// startLablog runs lablog with streams (YAML list items, indented by two
// spaces) and tokensDir as sources.tokens_dir. Everything else is the
// production default, backoff included: these tests measure it.
func startLablog(t *testing.T, tokensDir string, streams ...string) *lablogProc {
	t.Helper()
	return startLablogWith(t, tokensDir, "", streams...)
}

// startLablogWith is startLablog with more keys for the sources section
// (e.g. "min_backoff: 20s").
func startLablogWith(t *testing.T, tokensDir, sourcesKeys string, streams ...string) *lablogProc {
	t.Helper()
	dir := t.TempDir()
	l := &lablogProc{t: t, dir: dir, cfg: filepath.Join(dir, "lablog.yaml"), buf: filepath.Join(dir, "buffer.db"),
		archive: filepath.Join(dir, "archive"), status: freePort(t)}
	if err := os.Mkdir(l.archive, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`buffer: {path: %s}
archive: {path: %s, require: none}
sources: {tokens_dir: %s%s}
status: {listen: "127.0.0.1:%d"}
led: {path: ""}
streams:
`, l.buf, l.archive, tokensDir, sourcesKeys, l.status)
	for _, s := range streams {
		cfg += "  - " + s + "\n"
	}
	if err := os.WriteFile(l.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l.p = startProc(t, "lablog run", filepath.Join(dir, "lablog.log"), nil, lablogBin, "run", "--config", l.cfg)
	if !testkit.PollEvery(15*time.Second, pollEvery, func() bool { _, err := l.streams(); return err == nil || l.p.exited() }) || l.p.exited() {
		t.Fatalf("lablog's status API did not answer within 15 s")
	}
	return l
}

// streamStatus is the part of /api/status's streams the tests read.
type streamStatus struct {
	Name          string     `json:"name"`
	State         string     `json:"state"`
	Connected     bool       `json:"connected"`
	LastError     string     `json:"last_error"`
	MessagesTotal int64      `json:"messages_total"`
	BytesTotal    int64      `json:"bytes_total"`
	LastMessageAt *time.Time `json:"last_message_at"`
	Reconnects    int64      `json:"reconnects_total"`
}

func (l *lablogProc) streams() (map[string]streamStatus, error) {
	code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/api/status", l.status))
	if err != nil {
		return nil, fmt.Errorf("lablog status: %w", err)
	}
	if code != 200 {
		return nil, fmt.Errorf("lablog status: HTTP %d", code)
	}
	var st struct {
		Streams []streamStatus `json:"streams"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("lablog status: %w", err)
	}
	m := map[string]streamStatus{}
	for _, s := range st.Streams {
		m[s.Name] = s
	}
	return m, nil
}

// records stops lablog and reads every message it committed, from its
// buffer and from anything the compactor archived, by stream.
func (l *lablogProc) records() map[string][]received {
	t := l.t
	t.Helper()
	l.p.stop()
	out := map[string][]received{}
	l.overflows = map[string]int{}
	db, err := buffer.Open(l.buf, buffer.Options{})
	if err != nil {
		t.Fatalf("open lablog's buffer: %v", err)
	}
	defer db.Close()
	groups, err := db.Groups()
	if err != nil {
		t.Fatalf("buffer groups: %v", err)
	}
	for _, g := range groups {
		damaged, err := db.Scan(g, 0, ^uint64(0), func(_ uint64, r frame.Record) error {
			switch r.Kind {
			case frame.Text:
				out[g.Stream] = append(out[g.Stream], received{at: r.Received, data: r.Data})
			case frame.Overflow:
				l.overflows[g.Stream]++
			}
			return nil
		})
		if err != nil || len(damaged) > 0 {
			t.Fatalf("scan buffer: %v, damaged blocks %v", err, damaged)
		}
	}
	err = filepath.WalkDir(l.archive, func(path string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		rows, meta, err := archive.ReadRows(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		for _, r := range rows {
			switch {
			case r.Raw != nil && r.Kind == archive.KindMessage:
				out[meta.Stream] = append(out[meta.Stream], received{at: r.ReceivedTime(), data: []byte(*r.Raw)})
			case r.Kind == frame.Overflow.String():
				l.overflows[meta.Stream]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read lablog's archive: %v", err)
	}
	return out
}

// verify runs `lablog compact --open-hours` and `lablog verify`, so the
// recorded traffic also makes valid archive files.
func (l *lablogProc) verify() {
	l.t.Helper()
	l.p.stop()
	if out, err := exec.Command(lablogBin, "compact", "--config", l.cfg, "--open-hours").CombinedOutput(); err != nil {
		l.t.Fatalf("lablog compact: %v\n%s", err, out)
	}
	if out, err := exec.Command(lablogBin, "verify", l.archive).CombinedOutput(); err != nil {
		l.t.Fatalf("lablog verify: %v\n%s", err, out)
	}
}
