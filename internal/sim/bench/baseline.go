package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/record/frame"
)

// baseline is the old setup made durable, in-process: one reader per
// stream appends every message as a JSON line to its user's file and
// fsyncs after each line.
type baseline struct {
	dir    string
	lines  atomic.Int64
	fsyncs atomic.Int64
	errMu  sync.Mutex
	err    error
}

// consume reads one stream until ctx ends or the server closes.
func (b *baseline) consume(ctx context.Context, url, stream string) {
	dialer := websocket.Dialer{
		HandshakeTimeout: writeWait,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(sockBuf)
			}
			return c, err
		},
	}
	ws, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		b.fail(fmt.Errorf("baseline dial %s: %w", url, err))
		return
	}
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()
	w := lineWriter{dir: filepath.Join(b.dir, stream), b: b}
	defer w.close()
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		b.fail(fmt.Errorf("baseline: %w", err))
		return
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		for _, m := range frame.Split(data) {
			if err := w.write(m.Raw); err != nil {
				b.fail(err)
				return
			}
		}
	}
}

func (b *baseline) fail(err error) {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

// lineWriter keeps the current user's file open: a stream's messages come
// user session after user session.
type lineWriter struct {
	dir  string
	b    *baseline
	user string
	f    *os.File
}

func (w *lineWriter) write(msg []byte) error {
	user := userOf(msg)
	if w.f == nil || user != w.user {
		w.close()
		f, err := os.OpenFile(filepath.Join(w.dir, user+".json"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("baseline open: %w", err)
		}
		w.f, w.user = f, user
	}
	line := append(bytes.TrimSpace(msg), '\n')
	if _, err := w.f.Write(line); err != nil {
		return fmt.Errorf("baseline write: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("baseline fsync: %w", err)
	}
	w.b.lines.Add(1)
	w.b.fsyncs.Add(1)
	return nil
}

func (w *lineWriter) close() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// userOf finds the "user" string of a message without a JSON parser (the
// analytics server's NaN is not JSON); "unknown" when it has none.
func userOf(msg []byte) string {
	i := bytes.Index(msg, []byte(`"user"`))
	if i < 0 {
		return "unknown"
	}
	rest := bytes.TrimLeft(msg[i+len(`"user"`):], " :")
	if len(rest) == 0 || rest[0] != '"' {
		return "unknown"
	}
	end := bytes.IndexByte(rest[1:], '"')
	u := rest[1 : 1+max(end, 0)]
	if end <= 0 || bytes.ContainsAny(u, `/\.`) {
		return "unknown"
	}
	return string(u)
}

// baselineRun is what one run of the baseline measured.
type baselineRun struct {
	lines, fsyncs, elapsed float64
}

// measureBaseline offers the load to the baseline and counts the lines it
// made durable, until it has caught up or the drain time is over.
func (r *runner) measureBaseline(ctx context.Context, l load, d time.Duration, seed uint64) (baselineRun, error) {
	var out baselineRun
	dir, s, done, err := r.stage("baseline")
	if err != nil {
		return out, err
	}
	defer done()
	names := streamNames(l.streams)
	b := &baseline{dir: dir}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.consume(cctx, s.url(n), n)
		}()
	}
	wctx, wcancel := context.WithTimeout(ctx, r.connectTimeout(len(names)))
	err = s.waitClients(wctx, names)
	wcancel()
	if err != nil {
		return out, errors.Join(err, b.err)
	}
	var p pool
	if l.rate <= 0 {
		if p, err = r.pool(ctx, l.streams); err != nil { // made before the clock starts
			return out, err
		}
	}
	start := time.Now()
	if l.rate > 0 {
		runPaced(ctx, s, names, l.rate, d, seed)
	} else {
		runFlat(ctx, s, p, d, l.total)
	}
	want := s.sent().msgs
	deadline := time.Now().Add(r.drainTimeout())
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for b.lines.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		<-tick.C
	}
	out.elapsed = time.Since(start).Seconds()
	out.lines, out.fsyncs = float64(b.lines.Load()), float64(b.fsyncs.Load())
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return out, b.err
}
