package relaytest

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// hubClient is one websocket client of a topic: a reader goroutine and a
// writer goroutine that owns writes, fed by a buffered queue.
type hubClient struct {
	conn  *websocket.Conn
	topic string
	read  bool
	write bool
	send  chan message
	gone  chan struct{}
	once  sync.Once
}

type message struct {
	typ  int
	data []byte
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveHub is the relay side: GET /session/{topic}?code=...
func (r *Relay) serveHub(w http.ResponseWriter, req *http.Request) {
	topicName := strings.TrimPrefix(req.URL.Path, "/session/")
	g, err := r.redeem(req.URL.Query().Get("code"), topicName)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	c := &hubClient{conn: conn, topic: topicName, read: g.read, write: g.write,
		send: make(chan message, r.queue), gone: make(chan struct{})}
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		conn.Close()
		return
	}
	t := r.topics[topicName]
	if t == nil {
		t = &topic{clients: map[*hubClient]struct{}{}}
		r.topics[topicName] = t
	}
	t.clients[c] = struct{}{}
	r.notify()
	r.wg.Add(2) // this handler (the reader) and the writer: Stop waits for both
	r.mu.Unlock()
	defer r.wg.Done()

	// The relay closes the connection when the token expires.
	expiry := time.AfterFunc(g.expires.Sub(r.now()), func() {
		msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "token expired")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.cut()
	})
	defer expiry.Stop()
	go func() {
		defer r.wg.Done()
		r.writeLoop(c)
	}()
	r.readLoop(c)
}

// readLoop passes what a client sends to the topic's other readers; without
// the write scope it is dropped.
func (r *Relay) readLoop(c *hubClient) {
	defer c.cut()
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if c.write {
			r.broadcast(c, message{typ, data})
		}
	}
}

func (r *Relay) broadcast(from *hubClient, m message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received++
	r.notify()
	t := r.topics[from.topic]
	for c := range t.clients {
		if c == from || !c.read {
			continue
		}
		select {
		case c.send <- m:
			r.inflight++
			r.notify()
		default:
			// As the real relay (and its conformance tests) do: a reader
			// whose queue is full misses this message and stays connected.
			r.droppedOnFull++
			r.notify()
		}
	}
}

// writeLoop sends queued messages; whatever else is queued when it starts
// a frame goes into the same frame, as the real relay does under load.
func (r *Relay) writeLoop(c *hubClient) {
	defer r.remove(c)
	for {
		var m message
		select {
		case <-c.gone:
			return
		case m = <-c.send:
		}
		r.mu.Lock()
		held := r.held
		r.notify() // the queue just shrank: a waiter may be watching it
		r.mu.Unlock()
		if held != nil {
			select {
			case <-held:
			case <-c.gone:
				r.done(1)
				return
			}
		}
		n := 1
		var frame bytes.Buffer
		frame.Write(m.data)
		for more := len(c.send); more > 0; more-- {
			frame.Write((<-c.send).data)
			n++
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		err := c.conn.WriteMessage(m.typ, frame.Bytes())
		r.mu.Lock()
		if err == nil {
			t := r.topics[c.topic]
			t.delivered = append(t.delivered, frame.Bytes())
			t.count++
		}
		r.inflight -= n
		r.notify()
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// done accounts for n messages that will never be written.
func (r *Relay) done(n int) {
	r.mu.Lock()
	r.inflight -= n
	r.notify()
	r.mu.Unlock()
}

// remove unregisters c and drops what it still had queued. Only the writer
// calls it: it alone receives from c.send.
func (r *Relay) remove(c *hubClient) {
	c.cut()
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.topics[c.topic]
	if _, ok := t.clients[c]; !ok {
		return
	}
	delete(t.clients, c)
	for more := len(c.send); more > 0; more-- {
		<-c.send
		r.inflight--
	}
	r.notify()
}

// cut closes the connection abruptly; both loops then end.
func (c *hubClient) cut() {
	c.once.Do(func() {
		close(c.gone)
		c.conn.Close()
	})
}
