package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/record/frame"
)

// sockBuf bounds what the kernel holds for one stream between the bench and
// its reader, so a slow reader (the fsync-per-line baseline) drains within
// seconds once the load stops.
const sockBuf = 128 << 10

const writeWait = 10 * time.Second

// server is the bench's own loopback websocket server: ws://127.0.0.1:port/ws/{stream}.
// It counts what it delivers to each stream's current client, so figures
// compare what was committed with what was really sent.
type server struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*served
	changed chan struct{} // closed and replaced when a client comes or goes
	closed  bool
}

// served is one stream: its current client and what it was sent.
type served struct {
	mu     sync.Mutex // serialises raw writes and pongs on conn
	conn   net.Conn
	frames atomic.Int64
	msgs   atomic.Int64
	bytes  atomic.Int64
	failed atomic.Int64 // frames not delivered (no client, write error)
}

func newServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench server: %w", err)
	}
	s := &server{ln: ln, streams: map[string]*served{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/", s.serveWS)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: writeWait}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

func (s *server) url(stream string) string { return "ws://" + s.ln.Addr().String() + "/ws/" + stream }

func (s *server) stream(name string) *served {
	st := s.streams[name]
	if st == nil {
		st = &served{}
		s.streams[name] = st
	}
	return st
}

func (s *server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *server) serveWS(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ws/")
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	nc := ws.NetConn()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sockBuf)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	st := s.stream(name)
	st.mu.Lock()
	old := st.conn
	st.conn = nc
	st.mu.Unlock()
	if old != nil {
		old.Close()
	}
	s.notify()
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	// Answer pings ourselves: frames are written raw, so gorilla's own
	// pong must not interleave with them.
	ws.SetPingHandler(func(data string) error {
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.conn != nc {
			return nil
		}
		_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
		_, err := nc.Write(appendFrame(nil, opPong, []byte(data)))
		return err
	})
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	s.mu.Lock()
	st.mu.Lock()
	if st.conn == nc {
		st.conn = nil
	}
	st.mu.Unlock()
	s.notify()
	s.mu.Unlock()
	nc.Close()
}

// waitClients waits until every stream in names has a client.
func (s *server) waitClients(ctx context.Context, names []string) error {
	for {
		s.mu.Lock()
		missing := ""
		for _, n := range names {
			st := s.streams[n]
			if st == nil || !st.connected() {
				missing = n
				break
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a client of stream %s: %w", missing, ctx.Err())
		case <-ch:
		}
	}
}

func (st *served) connected() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.conn != nil
}

// Publish sends one frame (labsim.Publisher): the paced load.
func (s *server) Publish(stream string, data []byte, binary bool) {
	msgs := int64(1)
	if !binary {
		msgs = int64(max(1, len(frame.Split(data))))
	}
	s.sendRaw(stream, appendFrame(nil, opText, data), 1, msgs, int64(len(data)))
}

// sendRaw writes already encoded frames in one write.
func (s *server) sendRaw(stream string, wire []byte, frames, msgs, payload int64) {
	s.mu.Lock()
	st := s.stream(stream)
	s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.conn == nil {
		st.failed.Add(frames)
		return
	}
	_ = st.conn.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := st.conn.Write(wire); err != nil {
		// Part of the frames may have gone: count them all as failed, so
		// "committed == sent" can only fail towards a visible problem.
		st.failed.Add(frames)
		st.conn.Close()
		st.conn = nil
		return
	}
	st.frames.Add(frames)
	st.msgs.Add(msgs)
	st.bytes.Add(payload)
}

// sent is what was delivered, summed over streams.
type sent struct{ frames, msgs, bytes, failed int64 }

func (s *server) sent() sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t sent
	for _, st := range s.streams {
		t.frames += st.frames.Load()
		t.msgs += st.msgs.Load()
		t.bytes += st.bytes.Load()
		t.failed += st.failed.Load()
	}
	return t
}

func (s *server) close() error {
	s.mu.Lock()
	s.closed = true
	var conns []net.Conn
	for _, st := range s.streams {
		st.mu.Lock()
		if st.conn != nil {
			conns = append(conns, st.conn)
		}
		st.mu.Unlock()
	}
	s.mu.Unlock()
	err := s.srv.Close()
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
