package labsim

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// hostClient is one local websocket client. A writer goroutine owns writes;
// the handler goroutine reads.
type hostClient struct {
	conn     *websocket.Conn
	stream   *hostStream
	out      chan outFrame // unbuffered, like the real host's
	gone     chan struct{} // closed when the client is finished
	goneOnce sync.Once
}

type outFrame struct {
	data   []byte
	binary bool
	done   chan struct{} // closed after the write when Publish waits
}

var upgrader = websocket.Upgrader{
	CheckOrigin: func(*http.Request) bool { return true }, // local tool, any origin
}

func (h *Host) serveWS(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/ws/")
	if !validStream.MatchString(name) || name == "api" {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	s := h.stream(name)
	drops, refused := s.drops, s.refused
	h.mu.Unlock()
	if refused {
		http.Error(w, "stream unavailable", http.StatusServiceUnavailable)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	h.mu.Lock()
	if h.closed || s.drops != drops {
		// Cut while being set up: the client may have seen the handshake
		// succeed already, so it is cut rather than never accepted.
		h.mu.Unlock()
		conn.NetConn().Close()
		return
	}
	if h.hang {
		s.hung = append(s.hung, conn.NetConn())
		h.mu.Unlock()
		return
	}
	c := &hostClient{conn: conn, stream: s, out: make(chan outFrame), gone: make(chan struct{})}
	s.clients[c] = struct{}{}
	h.notify()
	h.wg.Add(2) // this handler and the writer: Close waits for both
	h.mu.Unlock()

	go func() {
		defer h.wg.Done()
		h.write(c)
	}()
	defer h.wg.Done()
	h.read(name, c)
}

// read forwards what the client sends to the other clients of its stream,
// and notices when it goes away.
func (h *Host) read(name string, c *hostClient) {
	defer h.remove(c)
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		h.publish(name, data, typ == websocket.BinaryMessage, c)
		if h.FromClient != nil {
			h.FromClient(name, data, typ == websocket.BinaryMessage)
		}
	}
}

func (h *Host) write(c *hostClient) {
	defer h.remove(c)
	ping := time.NewTicker(hostPingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.gone:
			return
		case <-ping.C:
			if c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(hostWriteWait)) != nil {
				return
			}
		case f := <-c.out:
			typ := websocket.TextMessage
			if f.binary {
				typ = websocket.BinaryMessage
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(hostWriteWait))
			err := c.conn.WriteMessage(typ, f.data)
			h.wrote(c, f, err == nil)
			if err != nil {
				return
			}
		}
	}
}

// wrote accounts for one write attempt.
func (h *Host) wrote(c *hostClient, f outFrame, ok bool) {
	h.mu.Lock()
	s := c.stream
	if ok {
		s.count++
		if !h.CountOnly {
			s.delivered = append(s.delivered, f.data)
		}
	}
	if f.done == nil {
		h.finished(s)
	}
	h.mu.Unlock()
	if f.done != nil {
		close(f.done)
	}
}

// remove unregisters c and closes its connection; it may run more than once.
func (h *Host) remove(c *hostClient) {
	c.goneOnce.Do(func() {
		h.mu.Lock()
		if _, ok := c.stream.clients[c]; ok {
			delete(c.stream.clients, c)
			h.notify()
		}
		h.mu.Unlock()
		close(c.gone)
		c.conn.Close()
	})
}
