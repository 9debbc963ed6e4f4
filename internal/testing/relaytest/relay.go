// Package relaytest has test doubles of the practable relay and of a relay
// host that behave as docs/relay.md describes the real ones, quirks
// included; its tests pin each quirk. It shares no code with package relay,
// so a mistake there cannot hide behind the same mistake here.
package relaytest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/practable/lablog/internal/platform/waitfor"
)

// CodeLife is how long an access code stays valid, as on the real relay.
const CodeLife = 30 * time.Second

// RelayOptions configure a Relay. Zero fields take the defaults stated.
type RelayOptions struct {
	Secret []byte           // HS256 shared secret of the tokens; required
	Now    func() time.Time // clock for token checks and code expiry; default time.Now
	// Queue is how many messages wait for a client; more are dropped for
	// it, the client staying connected. The real relay's is 128; the
	// default, 4096, keeps tests that do not ask for loss free of it.
	Queue int
}

// Relay is the relay's access endpoint and its topic hub, on two loopback
// listeners as the real ones are two services:
//
//   - POST {URL}/session/{topic} with the raw token in Authorization (a
//     "Bearer " prefix gives HTTP 500) checks the token (HS256, aud = URL,
//     exp/nbf/iat, topic = {topic}, non-empty booking_id) and answers
//     {"uri": "ws://127.0.0.1:P/session/{topic}?code=<uuid>"}; the code is
//     single-use and expires after CodeLife.
//   - Dialling the uri joins the topic. A message goes to every other
//     client of the topic that has the read scope; a client without the
//     write scope cannot send. Messages queued for a busy client are sent
//     as ONE frame, concatenated without separator; a message that finds
//     the client's queue full is dropped for it, without closing it. The
//     connection is closed when the token expires.
//
// Stop and Start simulate the relay going away and coming back on the same
// ports, forgetting its codes. Every frame written to a client with the
// read scope is recorded (see Delivered).
type Relay struct {
	secret []byte
	now    func() time.Time
	queue  int

	accessAddr, hubAddr string // fixed for the Relay's life

	mu            sync.Mutex
	running       bool
	servers       []*http.Server
	wg            sync.WaitGroup // servers, client goroutines
	codes         map[string]grant
	topics        map[string]*topic
	inflight      int            // messages queued or being written
	received      int64          // messages received from clients with the write scope
	held          chan struct{}  // closed when writes may go on; nil when not held
	changed       waitfor.Signal // wakes waiters on every change they care about
	answers       map[int]int    // access answers by status, for tests
	droppedOnFull int64          // messages a reader missed because its queue was full
}

type grant struct {
	topic   string
	read    bool
	write   bool
	expires time.Time // token expiry
	issued  time.Time // when the code was made
}

type topic struct {
	clients   map[*hubClient]struct{}
	delivered [][]byte
	count     int64
}

// NewRelay starts a relay on two free loopback ports.
func NewRelay(opts RelayOptions) (*Relay, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("relaytest: empty secret")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Queue <= 0 {
		opts.Queue = 4096
	}
	r := &Relay{secret: opts.Secret, now: opts.Now, queue: opts.Queue, topics: map[string]*topic{},
		answers: map[int]int{}}
	if err := r.listen("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Relay) listen(accessAddr, hubAddr string) error {
	al, err := net.Listen("tcp", accessAddr)
	if err != nil {
		return fmt.Errorf("relaytest: access listener: %w", err)
	}
	hl, err := net.Listen("tcp", hubAddr)
	if err != nil {
		al.Close()
		return fmt.Errorf("relaytest: hub listener: %w", err)
	}
	amux := http.NewServeMux()
	amux.HandleFunc("/session/", r.serveAccess)
	hmux := http.NewServeMux()
	hmux.HandleFunc("/session/", r.serveHub)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accessAddr, r.hubAddr = al.Addr().String(), hl.Addr().String()
	r.codes = map[string]grant{}
	r.running = true
	r.servers = nil
	for _, s := range []struct {
		ln net.Listener
		h  http.Handler
	}{{al, amux}, {hl, hmux}} {
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		r.servers = append(r.servers, srv)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = srv.Serve(s.ln)
		}()
	}
	return nil
}

// URL is the access base URL, e.g. http://127.0.0.1:40123: the audience
// tokens must carry.
func (r *Relay) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "http://" + r.accessAddr
}

// AccessURL is the access endpoint of topic.
func (r *Relay) AccessURL(topic string) string { return r.URL() + "/session/" + topic }

// Stop cuts every client and stops listening, forgetting all codes, as a
// crashed relay would. Delivered keeps what was delivered before.
func (r *Relay) Stop() {
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		return
	}
	r.running = false
	servers := r.servers
	var clients []*hubClient
	for _, t := range r.topics {
		for c := range t.clients {
			clients = append(clients, c)
		}
	}
	r.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
	for _, c := range clients {
		c.cut()
	}
	r.wg.Wait()
}

// Start listens again on the same ports after Stop.
func (r *Relay) Start() error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return nil
	}
	a, h := r.accessAddr, r.hubAddr
	r.mu.Unlock()
	return r.listen(a, h)
}

// DroppedOnFull is the number of messages readers missed because their
// queue was full.
func (r *Relay) DroppedOnFull() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.droppedOnFull
}

// Close stops the relay for good.
func (r *Relay) Close() error {
	r.Stop()
	return nil
}

// Refusals is how many access requests got status code, for tests.
func (r *Relay) Answers(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answers[code]
}

// WaitAnswers waits until n access requests have been answered with code.
func (r *Relay) WaitAnswers(ctx context.Context, code, n int) error {
	return r.await(ctx, func() bool { return r.answers[code] >= n })
}

// notify wakes waiters; r.mu must be held.
func (r *Relay) notify() {
	r.changed.Notify()
}

func (r *Relay) await(ctx context.Context, cond func() bool) error {
	return r.changed.Await(ctx, &r.mu, cond)
}

// Clients is the number of clients joined to topic.
func (r *Relay) Clients(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.topics[topic]; t != nil {
		return len(t.clients)
	}
	return 0
}

// WaitClients waits until topic has at least n clients.
func (r *Relay) WaitClients(ctx context.Context, topic string, n int) error {
	err := r.await(ctx, func() bool { return r.topics[topic] != nil && len(r.topics[topic].clients) >= n })
	if err != nil {
		return fmt.Errorf("relaytest: waiting for %d clients of %s (have %d): %w", n, topic, r.Clients(topic), err)
	}
	return nil
}

// Readers is the number of clients of topic with the read scope.
func (r *Relay) Readers(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readers(topic)
}

func (r *Relay) readers(topic string) int {
	n := 0
	if t := r.topics[topic]; t != nil {
		for c := range t.clients {
			if c.read {
				n++
			}
		}
	}
	return n
}

// WaitReaders waits until topic has exactly n clients with the read scope:
// after a peer restarts, until its old connections are gone.
func (r *Relay) WaitReaders(ctx context.Context, topic string, n int) error {
	err := r.await(ctx, func() bool { return r.readers(topic) == n })
	if err != nil {
		return fmt.Errorf("relaytest: waiting for %d readers of %s (have %d): %w", n, topic, r.Readers(topic), err)
	}
	return nil
}

// WaitReceived waits until n messages in all have come from clients with
// the write scope: a sender's write returns before the relay has read it.
func (r *Relay) WaitReceived(ctx context.Context, n int64) error {
	err := r.await(ctx, func() bool { return r.received >= n })
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return fmt.Errorf("relaytest: waiting for %d messages (have %d): %w", n, r.received, err)
	}
	return nil
}

// WaitIdle waits until no message is queued or being written.
func (r *Relay) WaitIdle(ctx context.Context) error {
	return r.await(ctx, func() bool { return r.inflight == 0 })
}

// Delivered returns the frames of topic written to clients with the read
// scope, in order (once per reader). The frames are shared: do not modify.
func (r *Relay) Delivered(topic string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.topics[topic]; t != nil {
		return append([][]byte(nil), t.delivered...)
	}
	return nil
}

// DeliveredCount is the number of frames in Delivered(topic).
func (r *Relay) DeliveredCount(topic string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.topics[topic]; t != nil {
		return t.count
	}
	return 0
}

// HoldWrites stops (true) and resumes (false) every client's writes, so
// that messages queue up: tests use it to see them glued into one frame.
func (r *Relay) HoldWrites(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case on && r.held == nil:
		r.held = make(chan struct{})
	case !on && r.held != nil:
		close(r.held)
		r.held = nil
	}
}

// serveAccess is the access endpoint: POST /session/{topic}.
func (r *Relay) serveAccess(w http.ResponseWriter, req *http.Request) {
	status, body := r.access(req)
	r.mu.Lock()
	r.answers[status]++
	r.notify()
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// claims is the relay's reading of a token.
type claims struct {
	Topic     string   `json:"topic"`
	Prefix    string   `json:"prefix"`
	Scopes    []string `json:"scopes"`
	BookingID string   `json:"booking_id"`
	jwt.RegisteredClaims
}

func (r *Relay) access(req *http.Request) (int, any) {
	if req.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, errorBody{"405", "method not allowed"}
	}
	path := strings.TrimPrefix(req.URL.Path, "/session/")
	auth := req.Header.Get("Authorization")
	switch {
	case auth == "":
		return http.StatusUnauthorized, errorBody{"401", "unauthenticated for invalid credentials"}
	case strings.HasPrefix(auth, "Bearer "):
		// The real relay's middleware fails on the prefix with a 500.
		return http.StatusInternalServerError, errorBody{"500", "token unprocessable"}
	}
	var c claims
	_, err := jwt.ParseWithClaims(auth, &c, func(*jwt.Token) (any, error) { return r.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(r.now), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithAudience(r.URL()))
	if err != nil {
		return http.StatusUnauthorized, errorBody{"401", "token invalid"}
	}
	switch {
	case c.Topic == "" || c.Prefix == "" || len(c.Scopes) == 0:
		return http.StatusUnauthorized, "Token Missing Required Claims"
	case path == "":
		return http.StatusUnauthorized, "Path Missing SessionID"
	case c.Topic != path:
		return http.StatusUnauthorized, "Token Wrong Topic"
	case c.BookingID == "":
		return http.StatusBadRequest, errorBody{"400", "empty bookingID field is not permitted"}
	}
	g := grant{topic: c.Topic, expires: c.ExpiresAt.Time, issued: r.now()}
	for _, s := range c.Scopes {
		g.read = g.read || s == "read"
		g.write = g.write || s == "write"
	}
	code := uuid()
	r.mu.Lock()
	r.codes[code] = g
	hub := r.hubAddr
	r.mu.Unlock()
	return http.StatusOK, map[string]string{"uri": "ws://" + hub + "/" + c.Prefix + "/" + c.Topic + "?code=" + code}
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// redeem uses up code for topic.
func (r *Relay) redeem(code, topic string) (grant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.codes[code]
	delete(r.codes, code) // single use, whatever happens next
	switch {
	case !ok:
		return grant{}, errors.New("code unknown or already used")
	case r.now().Sub(g.issued) > CodeLife:
		return grant{}, errors.New("code expired")
	case g.topic != topic:
		return grant{}, errors.New("code is for another topic")
	}
	return g, nil
}
