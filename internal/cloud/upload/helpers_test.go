package upload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/s3test"
)

var day = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// newArchive makes an archive root with its marker.
func newArchive(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// publish writes a real archive file of stream's hour with n frames
// (seqs first..first+n-1) and returns its path relative to root.
func publish(t testing.TB, root, stream string, hour time.Time, first uint64, n int) string {
	t.Helper()
	w, err := archive.Create(root, stream, hour, archive.Options{BufferID: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for i := range n {
		seq := first + uint64(i)
		// A pseudo-random reading, as rigs send, so files compress as real ones do.
		r := (uint64(i)*6364136223846793005 + 1442695040888963407) >> 20
		data := fmt.Sprintf(`{"user":"u%d","t":%d,"type":"log","payload":{"n":%d,"s":%q,"v":%d.%03d}}`, i%7, 1764165600000+i, i, stream, r%10000, r%997)
		if err := w.Add(archive.Entry{Seq: seq, Rec: frame.Record{Stream: stream, Received: hour.Add(time.Duration(i) * time.Millisecond),
			Kind: frame.Text, Data: []byte(data)}}); err != nil {
			t.Fatal(err)
		}
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(rel)
}

// proxy stands between the uploader and versitygw: it counts requests per
// method and key, and can answer 500s, be slow, or be down.
type proxy struct {
	URL  string
	srv  *http.Server
	ln   net.Listener
	rp   *httputil.ReverseProxy
	mu   sync.Mutex
	puts map[string]int // successful (2xx) PUTs per path
	reqs map[string]int // every request per method
	fail int            // answer this many more requests with 500
	// delay holds each request this long before passing it on.
	delay time.Duration
	down  bool // close connections without an answer
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{URL: "http://" + ln.Addr().String(), ln: ln, puts: map[string]int{}, reqs: map[string]int{}}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.Transport = &http.Transport{Proxy: nil}
	p.rp.ErrorLog = slogDiscard()
	p.srv = &http.Server{Handler: p, ErrorLog: slogDiscard()}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.reqs[r.Method]++
	down, delay := p.down, p.delay
	fail := p.fail > 0
	if fail {
		p.fail--
	}
	p.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test</Message></Error>`)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	p.rp.ServeHTTP(rec, r)
	if r.Method == http.MethodPut && rec.code/100 == 2 {
		p.mu.Lock()
		p.puts[r.URL.Path]++
		p.mu.Unlock()
	}
}

func (p *proxy) set(f func(p *proxy)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *proxy) putCounts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.puts {
		out[k] = v
	}
	return out
}

func (p *proxy) requests(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqs[method]
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// env is an archive, a versitygw with a bucket, and a proxy in front.
type env struct {
	root   string
	srv    *s3test.Server
	proxy  *proxy
	bucket string
	logs   *bytes.Buffer
	logMu  *sync.Mutex
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := s3test.Start(t)
	e := &env{root: newArchive(t), srv: srv, bucket: "lab-archive", logs: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	srv.Bucket(t, e.bucket)
	e.proxy = newProxy(t, srv.URL)
	return e
}

func (e *env) creds() Credentials {
	return Credentials{AccessKeyID: e.srv.AccessKey, SecretAccessKey: e.srv.SecretKey}
}

func (e *env) options(site string) Options {
	return Options{
		Root: e.root, Require: archive.RequireMarker,
		Endpoint: e.proxy.URL, Region: e.srv.Region, Bucket: e.bucket, Prefix: "fleet", Site: site, PathStyle: true,
		Concurrency: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: 5 * time.Second,
		Interval: time.Second,
		Logger:   slog.New(slog.NewTextHandler(lockedWriter{e.logMu, e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) logText() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func slogDiscard() *log.Logger { return log.New(io.Discard, "", 0) }

// settle runs cycles until nothing waits (or a bound on cycles is hit),
// ignoring backoff waits: each failure is retried at the next cycle.
func settle(t *testing.T, u *Uploader, maxCycles int) Stats {
	t.Helper()
	ctx := context.Background()
	for range maxCycles {
		u.mu.Lock()
		u.st.NextAttemptAt = time.Time{}
		u.mu.Unlock()
		u.cycle(ctx)
		if st := u.Stats(); st.State == StateIdle {
			return st
		}
	}
	st := u.Stats()
	t.Fatalf("not idle after %d cycles: %+v", maxCycles, st)
	return st
}

// checkBucket checks the bucket holds exactly the files of rels (under
// site), byte for byte, and returns the keys.
func (e *env) checkBucket(t *testing.T, site string, rels []string) {
	t.Helper()
	dir := t.TempDir()
	objs := e.srv.Download(t, e.bucket, dir)
	want := map[string]bool{}
	for _, rel := range rels {
		want["fleet/site="+site+"/"+rel] = true
	}
	got := map[string]bool{}
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, "fleet/site="+site+"/") {
			continue
		}
		got[o.Key] = true
		if !want[o.Key] {
			t.Errorf("unexpected object %s", o.Key)
			continue
		}
		local, err := os.ReadFile(filepath.Join(e.root, strings.TrimPrefix(o.Key, "fleet/site="+site+"/")))
		if err != nil {
			t.Fatal(err)
		}
		remote, err := os.ReadFile(filepath.Join(dir, o.Key))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(local, remote) {
			t.Errorf("%s: object differs from the file (%d vs %d bytes)", o.Key, len(remote), len(local))
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing object %s", k)
		}
	}
}

// checkOnce checks no key was PUT successfully more than once.
func (e *env) checkOnce(t *testing.T) {
	t.Helper()
	for k, n := range e.proxy.putCounts() {
		if n != 1 {
			t.Errorf("%s was stored %d times", k, n)
		}
	}
}

type slogLogger = slog.Logger

func slogNew(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// startServer is s3test.Start for tests and benchmarks alike.
func startServer(tb testing.TB) *s3test.Server { return s3test.Start(tb) }
