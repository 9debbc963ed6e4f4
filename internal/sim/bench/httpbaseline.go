package bench

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// fsyncServer is the HTTP baseline, in the bench: a plain /addLog server
// that appends each statement as a line to one file and fsyncs it before
// answering 204, one statement at a time, as a simple durable server does.
type fsyncServer struct {
	srv    *http.Server
	ln     net.Listener
	user   string
	pass   string
	mu     sync.Mutex
	f      *os.File
	lines  atomic.Int64 // statements written and fsynced
	fsyncs atomic.Int64
	served chan struct{}
}

func newFsyncServer(dir, user, pass string) (*fsyncServer, error) {
	f, err := os.OpenFile(filepath.Join(dir, "statements.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("http baseline: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("http baseline: %w", err)
	}
	s := &fsyncServer{ln: ln, user: user, pass: pass, f: f, served: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /addLog", s.addLog)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *fsyncServer) url() string { return "http://" + s.ln.Addr().String() + "/addLog" }

func (s *fsyncServer) addLog(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(u+":"+p), []byte(s.user+":"+s.pass)) != 1 {
		http.Error(w, "a valid Basic credential is required", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	line := append(append([]byte(r.URL.RawQuery+"\t"), body...), '\n')
	if err := s.append(line); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *fsyncServer) append(line []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(line); err != nil {
		return fmt.Errorf("http baseline write: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("http baseline fsync: %w", err)
	}
	s.fsyncs.Add(1)
	s.lines.Add(1)
	return nil
}

func (s *fsyncServer) close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.served
	return errors.Join(err, s.f.Close())
}
