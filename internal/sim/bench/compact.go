package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/sim/labsim"
)

// compactStreams is how many streams the compaction buffer holds.
const compactStreams = 4

// builtBuffer is a buffer file of realistic records, made once per bench.
type builtBuffer struct {
	path     string
	side     string // the analytics store's file beside it, "" for none
	rows     int64  // messages
	rawBytes int64  // their JSON text
	size     int64  // the buffer file
}

// bufferFiller appends labsim's frames to a buffer in big batches, dated
// over the two hours before the current one.
type bufferFiller struct {
	mu    sync.Mutex
	db    *buffer.DB
	batch []frame.Record
	start time.Time
	step  time.Duration
	n     int64
	raw   int64
	err   error
}

const fillBatch = 20000

func (f *bufferFiller) Publish(stream string, data []byte, binary bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batch = append(f.batch, frame.Record{
		Stream: stream, Received: f.next(),
		ClockSynced: true, Kind: frame.Text, Data: data,
	})
	f.n++
	f.raw += int64(len(data))
	if len(f.batch) >= fillBatch {
		f.flush()
	}
}

// now is the time the next frame will be received at: the clock of the
// messages' "t" field, which a lab's UI sets moments before the frame
// arrives. The real clock would pack two hours of messages into the few
// seconds the bench takes to make them, a t column that compresses better
// than any real one, by how fast this machine happens to be.
func (f *bufferFiller) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next()
}

// next is the time the next frame is received at; f.mu is held.
func (f *bufferFiller) next() time.Time { return f.start.Add(time.Duration(f.n) * f.step) }

// flush appends the batch; f.mu is held.
func (f *bufferFiller) flush() {
	if len(f.batch) == 0 || f.err != nil {
		f.batch = f.batch[:0]
		return
	}
	if err := f.db.Append(f.batch); err != nil {
		f.err = fmt.Errorf("building the compaction buffer: %w", err)
	}
	f.batch = f.batch[:0]
}

// buildBuffer makes a buffer of rows messages in dir, with only the stable
// buffer API (Open, Append, Close).
func buildBuffer(ctx context.Context, dir string, rows int) (*builtBuffer, error) {
	path := filepath.Join(dir, "buffer.db")
	db, err := buffer.Open(path, buffer.Options{MaxSize: 4 << 30})
	if err != nil {
		return nil, fmt.Errorf("compaction buffer: %w", err)
	}
	per := max(1, rows/compactStreams)
	hour := time.Now().UTC().Truncate(time.Hour)
	f := &bufferFiller{db: db, start: hour.Add(-2 * time.Hour), step: 2 * time.Hour / time.Duration(per*compactStreams)}
	lab := labsim.NewLabOn(f, labsim.LabOptions{Streams: streamNames(compactStreams), JoinProb: joinProb, Seed: 11, Now: f.now})
	err = lab.RunN(ctx, per)
	f.mu.Lock()
	f.flush()
	ferr := f.err
	f.mu.Unlock()
	if cerr := db.Close(); err == nil && ferr == nil {
		ferr = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("compaction buffer: %w", err)
	}
	if ferr != nil {
		return nil, ferr
	}
	b := &builtBuffer{path: path, rows: int64(per * compactStreams), rawBytes: f.raw}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("compaction buffer: %w", err)
	}
	b.size = st.Size()
	return b, nil
}

// withStoreCaughtUp copies b to dir and lets the live analytics store
// consume its records, as a running daemon's store has by the time its
// hourly compaction starts (it follows the commits): that compaction then
// archives and settles, where a standalone one also counts every record.
func withStoreCaughtUp(b *builtBuffer, dir string) (*builtBuffer, error) {
	c := *b
	c.path = filepath.Join(dir, "buffer.db")
	if err := copyFile(b.path, c.path); err != nil {
		return nil, err
	}
	db, err := buffer.Open(c.path, buffer.Options{MaxSize: 4 << 30})
	if err != nil {
		return nil, fmt.Errorf("compaction buffer: %w", err)
	}
	store, err := analytics.OpenStore(db, analytics.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		_, err = store.CatchUp()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("compaction buffer: analytics store: %w", err)
	}
	c.side = c.path + ".analytics"
	return &c, nil
}

// compaction is what one `lablog compact` run measured.
type compaction struct {
	seconds      float64
	cpuSeconds   float64 // user + system: on a loaded machine, the figure wall time is not
	maxRSS       float64 // bytes, from rusage
	mem          memory  // sampled peaks
	parquetBytes int64
	records      int64 // what the command said it published
}

// measureCompaction copies the built buffer and archives all of it with the
// real binary: lablog compact --open-hours.
func (r *runner) measureCompaction(ctx context.Context, b *builtBuffer) (compaction, error) {
	var out compaction
	dir, err := r.runDir("compact")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir) // after the child has stopped: defers run last-in first-out
	bufPath := filepath.Join(dir, "buffer.db")
	if err := copyFile(b.path, bufPath); err != nil {
		return out, err
	}
	if b.side != "" {
		if err := copyFile(b.side, bufPath+filepath.Ext(b.side)); err != nil {
			return out, err
		}
	}
	archive := filepath.Join(dir, "archive")
	if err := os.Mkdir(archive, 0o750); err != nil {
		return out, fmt.Errorf("compaction archive: %w", err)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "buffer: {path: %q, max_size: 4GiB}\narchive: {path: %q, require: none}\n", bufPath, archive)
	fmt.Fprintf(&cfg, "status: {listen: \"\"}\nled: {path: \"\"}\nstreams:\n")
	for _, n := range streamNames(compactStreams) {
		fmt.Fprintf(&cfg, "  - {name: %s, url: \"ws://127.0.0.1:9/ws/%s\"}\n", n, n)
	}
	cfgPath := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return out, fmt.Errorf("compaction config: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := r.o.command(ctx, "compact", "--config", cfgPath, "--open-hours")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return out, fmt.Errorf("start compact: %w", err)
	}
	mem := sampleMemory(ctx, cmd.Process.Pid)
	err = cmd.Wait()
	out.seconds = time.Since(start).Seconds()
	mem.close()
	if err != nil {
		return out, fmt.Errorf("lablog compact: %w\n%s%s", err, stdout.String(), tail(stderr.String()))
	}
	out.mem = mem.peaks()
	out.cpuSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out.maxRSS = float64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	var files int
	if _, err := fmt.Sscanf(stdout.String(), "published %d files, %d records", &files, &out.records); err != nil {
		return out, fmt.Errorf("lablog compact said %q: %w", stdout.String(), err)
	}
	out.parquetBytes, err = archiveBytes(archive)
	return out, err
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copy buffer: %w", err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return fmt.Errorf("copy buffer: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy buffer: %w", err)
	}
	return out.Close()
}

// archiveBytes sums the sizes of the published files under root.
func archiveBytes(root string) (int64, error) {
	files, err := archive.Files(root)
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n, err
}
