// Package labsim simulates a remote lab for demos and tests: Host fakes the
// local side of the practable relay host, and Lab generates the traffic of
// student UIs, dashboards and the analytics server on logging streams.
package labsim

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/practable/lablog/internal/platform/waitfor"
)

// Timings of the real relay host.
const (
	hostPingInterval = 54 * time.Second
	hostWriteWait    = 10 * time.Second
)

// validStream is the relay host's rule for stream names.
var validStream = regexp.MustCompile(`^[a-zA-Z0-9\-/]+$`)

// Host fakes the local side of a relay host (`relay host`): websocket clients
// of ws://addr/ws/{stream} receive every frame published on their stream,
// raw, text as text; GET /healthcheck answers "ok" (a JSON string). What a local client sends
// goes to the other local clients of its stream, as on the real host (there
// is no upstream here).
//
// Every successful write is counted, so tests compare a recording with what
// was really delivered rather than with what was published.
type Host struct {
	// Lossy drops a frame for a client whose writer is still busy with the
	// previous one, as the real host does (unbuffered channel, non-blocking
	// send). Off, Publish waits for every client. Set it before clients
	// connect.
	Lossy bool
	// CountOnly keeps counts of delivered frames but not their bytes, so a
	// long demo does not grow without bound. Set it before publishing.
	CountOnly bool
	// FromClient, when set, also gets what local clients send, as the real
	// host's upstream does. Set it before clients connect.
	FromClient func(stream string, data []byte, binary bool)

	ln  net.Listener
	srv *http.Server
	mux *http.ServeMux
	wg  sync.WaitGroup // connection handlers and client writers

	mu      sync.Mutex
	streams map[string]*hostStream
	hang    bool
	changed waitfor.Signal // wakes waiters when clients or in-flight writes change
	closed  bool
}

type hostStream struct {
	clients   map[*hostClient]struct{}
	hung      []net.Conn // connections that never answer (see Hang)
	delivered [][]byte
	count     int64 // frames delivered
	lost      int64 // frames dropped for a busy client (Lossy)
	inflight  int   // frames handed to a writer but not yet written
	drops     int   // DropClients calls, to cut connections still being set up
	refused   bool  // new connections are answered 503 (see Refuse)
}

// NewHost listens on addr ("127.0.0.1:0" picks a free port) and serves.
func NewHost(addr string) (*Host, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("labsim host: %w", err)
	}
	mux := http.NewServeMux()
	h := &Host{ln: ln, mux: mux, streams: map[string]*hostStream{}}
	mux.HandleFunc("/healthcheck", h.healthcheck)
	mux.HandleFunc("/ws/", h.serveWS)
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		_ = h.srv.Serve(ln)
	}()
	return h, nil
}

// URL is the base websocket URL, e.g. ws://127.0.0.1:40123; streams are at
// URL()+"/ws/"+stream.
func (h *Host) URL() string { return "ws://" + h.ln.Addr().String() }

// StreamURL is the websocket URL of stream.
func (h *Host) StreamURL(stream string) string { return h.URL() + "/ws/" + stream }

// Addr is the listening address.
func (h *Host) Addr() string { return h.ln.Addr().String() }

// Handle serves more of a host's API (see package relaytest) beside
// /ws/{stream} and /healthcheck.
func (h *Host) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

// Streams lists the streams that have had clients or frames.
func (h *Host) Streams() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.streams))
	for n := range h.streams {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Close stops serving, cuts every client and waits for the host's goroutines.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	var conns []net.Conn
	for _, s := range h.streams {
		for c := range s.clients {
			conns = append(conns, c.conn.NetConn())
		}
		conns = append(conns, s.hung...)
		s.hung = nil
	}
	h.mu.Unlock()
	err := h.srv.Close() // does not know hijacked connections, hence the list
	for _, c := range conns {
		c.Close()
	}
	h.wg.Wait()
	return err
}

func (h *Host) healthcheck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// As the real relay host: the JSON string "ok" and a newline.
	_, _ = w.Write([]byte("\"ok\"\n"))
}

// stream returns the state of name, creating it; h.mu must be held.
func (h *Host) stream(name string) *hostStream {
	s := h.streams[name]
	if s == nil {
		s = &hostStream{clients: map[*hostClient]struct{}{}}
		h.streams[name] = s
	}
	return s
}

// notify wakes the waiters of WaitClients and WaitIdle; h.mu must be held.
func (h *Host) notify() {
	h.changed.Notify()
}

// await waits until cond, evaluated with h.mu held, is true.
func (h *Host) await(ctx context.Context, cond func() bool) error {
	return h.changed.Await(ctx, &h.mu, cond)
}

// Clients is the number of clients connected to stream.
func (h *Host) Clients(stream string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[stream]; s != nil {
		return len(s.clients)
	}
	return 0
}

// WaitClients waits until stream has at least n clients that will receive
// what is published.
func (h *Host) WaitClients(ctx context.Context, stream string, n int) error {
	err := h.await(ctx, func() bool { return h.streams[stream] != nil && len(h.streams[stream].clients) >= n })
	if err != nil {
		return fmt.Errorf("labsim: waiting for %d clients of %s (have %d): %w", n, stream, h.Clients(stream), err)
	}
	return nil
}

// WaitIdle waits until no frame of stream is still being written. Publish
// already waits unless Lossy is set.
func (h *Host) WaitIdle(ctx context.Context, stream string) error {
	return h.await(ctx, func() bool { return h.streams[stream] == nil || h.streams[stream].inflight == 0 })
}

// Delivered returns the frames of stream whose write to a client succeeded,
// in the order written (with several clients, once per client). It is nil
// when CountOnly is set. The frames are shared: do not modify them.
func (h *Host) Delivered(stream string) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[stream]; s != nil {
		return append([][]byte(nil), s.delivered...)
	}
	return nil
}

// DeliveredCount is the number of successful writes of frames of stream.
func (h *Host) DeliveredCount(stream string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[stream]; s != nil {
		return s.count
	}
	return 0
}

// Lost is the number of frames of stream dropped for a busy client (Lossy).
func (h *Host) Lost(stream string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[stream]; s != nil {
		return s.lost
	}
	return 0
}

// DropClients cuts the TCP connections of stream's clients without a close
// frame, as a network failure would; connections still in their handshake
// and hung ones (see Hang) are cut too. They stop counting as clients at
// once, so WaitClients afterwards waits for new connections.
func (h *Host) DropClients(stream string) {
	h.mu.Lock()
	var conns []net.Conn
	if s := h.streams[stream]; s != nil {
		s.drops++
		for c := range s.clients {
			delete(s.clients, c)
			conns = append(conns, c.conn.NetConn())
		}
		conns = append(conns, s.hung...)
		s.hung = nil
		h.notify()
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Refuse makes new connections to stream, while on, fail with HTTP 503, as
// when the relay host has lost the stream upstream. Together with
// DropClients it cuts a stream until Refuse(stream, false).
func (h *Host) Refuse(stream string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stream(stream).refused = on
}

// Hang makes new connections, while on, complete the websocket handshake and
// then neither read nor write: pings go unanswered, like a half-open TCP
// connection. DropClients or Close ends them.
func (h *Host) Hang(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hang = on
}

// Publish sends frame to every client of stream, as if it arrived from
// upstream. Unless Lossy is set it returns once every client's write has
// finished, so Delivered already includes it.
func (h *Host) Publish(stream string, frame []byte, binary bool) {
	h.publish(stream, bytes.Clone(frame), binary, nil)
}

func (h *Host) publish(stream string, data []byte, binary bool, except *hostClient) {
	h.mu.Lock()
	s := h.stream(stream)
	clients := make([]*hostClient, 0, len(s.clients))
	for c := range s.clients {
		if c != except {
			clients = append(clients, c)
		}
	}
	lossy := h.Lossy
	h.mu.Unlock()
	for _, c := range clients {
		if lossy {
			h.offer(s, c, outFrame{data: data, binary: binary})
			continue
		}
		done := make(chan struct{})
		select {
		case c.out <- outFrame{data: data, binary: binary, done: done}:
			<-done
		case <-c.gone:
		}
	}
}

// offer hands f to c's writer only if it is idle, as the real host does.
func (h *Host) offer(s *hostStream, c *hostClient, f outFrame) {
	h.mu.Lock()
	s.inflight++
	h.mu.Unlock()
	select {
	case c.out <- f:
	default:
		h.mu.Lock()
		s.lost++
		h.finished(s)
		h.mu.Unlock()
	}
}

// finished ends one in-flight frame; h.mu must be held.
func (h *Host) finished(s *hostStream) {
	s.inflight--
	if s.inflight == 0 {
		h.notify()
	}
}
