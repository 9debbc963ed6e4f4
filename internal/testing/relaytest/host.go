package relaytest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/platform/waitfor"
	"github.com/practable/lablog/internal/sim/labsim"
)

// Rule is a relay host destination rule, as its API reads and writes it.
type Rule struct {
	ID          string `json:"id"`
	Stream      string `json:"stream"`
	Destination string `json:"destination"`
	Token       string `json:"token"`
	File        string `json:"file"`
}

// HostOptions configure a Host. Zero fields take the defaults stated.
type HostOptions struct {
	MinBackoff time.Duration // first upstream reconnect wait, doubling; default 1s as the real host
	MaxBackoff time.Duration // default 10s as the real host
	Lossy      bool          // drop frames for a busy local client (labsim.Host.Lossy)
}

// Host is a relay host: the local side of labsim.Host (ws://addr/ws/{stream},
// GET /healthcheck) plus the rules API:
//
//   - POST /api/destinations {"id","stream","destination","token","file"}
//     adds a rule or replaces the one with its id (a leading "/" of the
//     stream is dropped) and echoes it.
//   - GET /api/destinations/all returns every rule by id, full tokens
//     included, to anyone.
//   - GET /api/destinations/{id} returns the rule, or an empty rule (200)
//     when there is none.
//   - DELETE /api/destinations/{id} deletes it and echoes the id. DELETE
//     /api/destinations/all is the broken one: it only deletes a rule
//     whose id is "all".
//
// Each rule keeps one upstream connection: with a token, through the
// access protocol to destination; without, destination is dialled as is.
// Upstream frames go raw to every local client of the rule's stream; what a
// local client sends goes upstream. A lost upstream is retried after 1 s,
// doubling to 10 s, forever, even when the token has expired. Stop and
// Start (or Restart) simulate a restart: local clients are cut and every
// rule is lost.
type Host struct {
	opts HostOptions
	addr string

	mu       sync.Mutex
	running  bool
	local    *labsim.Host
	rules    map[string]Rule
	ups      map[string]*upstream // by rule id
	live     int                  // upstreams connected
	upFrames map[string]int64     // frames received from upstream, by stream
	posts    int
	past     map[string][][]byte // frames delivered by earlier runs, by stream
	pastN    map[string]int64
	changed  waitfor.Signal
}

type upstream struct {
	rule   Rule
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	conn   *websocket.Conn
}

// idRE is the host's route pattern for ids (and its rule for streams).
var idRE = regexp.MustCompile(`^[a-zA-Z0-9\-/]+$`)

// NewHost starts a relay host on a free loopback port.
func NewHost(opts HostOptions) (*Host, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	h := &Host{opts: opts, upFrames: map[string]int64{}, past: map[string][][]byte{},
		pastN: map[string]int64{}}
	if err := h.start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Host) start(addr string) error {
	local, err := labsim.NewHost(addr)
	if err != nil {
		return fmt.Errorf("relaytest host: %w", err)
	}
	local.Lossy = h.opts.Lossy
	local.FromClient = h.toUpstream
	local.Handle("/api/destinations", http.HandlerFunc(h.serveAdd))
	local.Handle("/api/destinations/", http.HandlerFunc(h.serveRule))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.local, h.addr, h.running = local, local.Addr(), true
	h.rules, h.ups = map[string]Rule{}, map[string]*upstream{}
	h.notify()
	return nil
}

// URL is the host's base URL, ws://127.0.0.1:port: the relay_host to
// configure. Its API is at the same address over http.
func (h *Host) URL() string { return "ws://" + h.addr }

// Local is the local side of the current run, for WaitClients, Publish...
func (h *Host) Local() *labsim.Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.local
}

// Stop cuts local clients and upstreams and forgets every rule, as a host
// that goes down does.
func (h *Host) Stop() {
	h.mu.Lock()
	if !h.running {
		h.mu.Unlock()
		return
	}
	h.running = false
	ups := h.ups
	h.ups = map[string]*upstream{}
	h.rules = map[string]Rule{}
	local := h.local
	h.notify()
	h.mu.Unlock()
	for _, u := range ups {
		u.stop()
	}
	for _, s := range local.Streams() {
		d := local.Delivered(s)
		n := local.DeliveredCount(s)
		h.mu.Lock()
		h.past[s] = append(h.past[s], d...)
		h.pastN[s] += n
		h.mu.Unlock()
	}
	_ = local.Close()
}

// Start serves again on the same port, with no rules.
func (h *Host) Start() error {
	h.mu.Lock()
	running, addr := h.running, h.addr
	h.mu.Unlock()
	if running {
		return nil
	}
	return h.start(addr)
}

// Restart is Stop then Start.
func (h *Host) Restart() error {
	h.Stop()
	return h.Start()
}

// Close stops the host for good.
func (h *Host) Close() error {
	h.Stop()
	return nil
}

// Rules returns a copy of the rules by id.
func (h *Host) Rules() map[string]Rule {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]Rule, len(h.rules))
	for k, v := range h.rules {
		out[k] = v
	}
	return out
}

// Posts is how many rules were posted, over every run.
func (h *Host) Posts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.posts
}

// WaitRules waits until cond holds for the rules.
func (h *Host) WaitRules(ctx context.Context, cond func(map[string]Rule) bool) error {
	return h.await(ctx, func() bool { return cond(h.rules) })
}

// WaitUpstreams waits until n rules have their upstream connected.
func (h *Host) WaitUpstreams(ctx context.Context, n int) error {
	return h.await(ctx, func() bool { return h.live >= n })
}

// Upstreams is the number of connected upstreams.
func (h *Host) Upstreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live
}

// UpstreamFrames is the number of frames of stream received from upstream.
func (h *Host) UpstreamFrames(stream string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.upFrames[stream]
}

// Delivered is every frame of stream written to local clients, across
// restarts, in order.
func (h *Host) Delivered(stream string) [][]byte {
	h.mu.Lock()
	out := append([][]byte(nil), h.past[stream]...)
	local := h.local
	running := h.running
	h.mu.Unlock()
	if running {
		out = append(out, local.Delivered(stream)...)
	}
	return out
}

// DeliveredCount is len(Delivered(stream)), cheaper.
func (h *Host) DeliveredCount(stream string) int64 {
	h.mu.Lock()
	n := h.pastN[stream]
	local := h.local
	running := h.running
	h.mu.Unlock()
	if running {
		n += local.DeliveredCount(stream)
	}
	return n
}

func (h *Host) notify() {
	h.changed.Notify()
}

func (h *Host) await(ctx context.Context, cond func() bool) error {
	return h.changed.Await(ctx, &h.mu, cond)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serveAdd is POST /api/destinations.
func (h *Host) serveAdd(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var rule Rule
	if err == nil {
		err = json.Unmarshal(body, &rule)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rule.Stream = strings.TrimPrefix(rule.Stream, "/")
	h.put(rule)
	writeJSON(w, rule)
}

// serveRule is GET /api/destinations/all, GET and DELETE
// /api/destinations/{id}.
func (h *Host) serveRule(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/destinations/")
	switch {
	case r.Method == http.MethodGet && id == "all":
		writeJSON(w, h.Rules())
	case !idRE.MatchString(id):
		http.NotFound(w, r)
	case r.Method == http.MethodGet:
		writeJSON(w, h.Rules()[id]) // an empty rule when unknown
	case r.Method == http.MethodDelete:
		// "all" is just an id here: the real host routes it to {id}.
		h.delete(id)
		writeJSON(w, id)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Host) put(rule Rule) {
	h.mu.Lock()
	if !h.running {
		h.mu.Unlock()
		return
	}
	old := h.ups[rule.ID]
	h.rules[rule.ID] = rule
	h.posts++
	ctx, cancel := context.WithCancel(context.Background())
	u := &upstream{rule: rule, cancel: cancel, done: make(chan struct{})}
	h.ups[rule.ID] = u
	local := h.local
	h.notify()
	h.mu.Unlock()
	if old != nil {
		old.stop()
	}
	go h.runUpstream(ctx, local, u)
}

func (h *Host) delete(id string) {
	h.mu.Lock()
	u := h.ups[id]
	delete(h.ups, id)
	delete(h.rules, id)
	h.notify()
	h.mu.Unlock()
	if u != nil {
		u.stop()
	}
}

func (u *upstream) stop() {
	u.cancel()
	u.mu.Lock()
	if u.conn != nil {
		u.conn.Close()
	}
	u.mu.Unlock()
	<-u.done
}

// runUpstream keeps a rule's upstream connection, with the real host's
// backoff, until the rule goes.
func (h *Host) runUpstream(ctx context.Context, local *labsim.Host, u *upstream) {
	defer close(u.done)
	wait := h.opts.MinBackoff
	for ctx.Err() == nil {
		var conn *websocket.Conn
		var err error
		if u.rule.Token != "" {
			conn, err = join(ctx, u.rule.Destination, u.rule.Token)
		} else {
			conn, _, err = websocket.DefaultDialer.DialContext(ctx, u.rule.Destination, nil)
		}
		if err == nil {
			wait = h.opts.MinBackoff
			h.pipe(ctx, local, u, conn)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, h.opts.MaxBackoff)
	}
}

// pipe passes upstream frames to the local clients until conn fails.
func (h *Host) pipe(ctx context.Context, local *labsim.Host, u *upstream, conn *websocket.Conn) {
	u.mu.Lock()
	if ctx.Err() != nil {
		u.mu.Unlock()
		conn.Close()
		return
	}
	u.conn = conn
	u.mu.Unlock()
	h.mu.Lock()
	h.live++
	h.notify()
	h.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.conn = nil
		u.mu.Unlock()
		conn.Close()
		h.mu.Lock()
		h.live--
		h.notify()
		h.mu.Unlock()
	}()
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.upFrames[u.rule.Stream]++
		h.mu.Unlock()
		local.Publish(u.rule.Stream, data, typ == websocket.BinaryMessage)
	}
}

// toUpstream sends what a local client of stream wrote up every rule of
// that stream.
func (h *Host) toUpstream(stream string, data []byte, binary bool) {
	h.mu.Lock()
	var ups []*upstream
	for _, u := range h.ups {
		if u.rule.Stream == stream {
			ups = append(ups, u)
		}
	}
	h.mu.Unlock()
	typ := websocket.TextMessage
	if binary {
		typ = websocket.BinaryMessage
	}
	for _, u := range ups {
		u.mu.Lock()
		if u.conn != nil {
			_ = u.conn.WriteMessage(typ, data)
		}
		u.mu.Unlock()
	}
}
