// Package addlog is lablog's HTTP front door for today's lab UIs: they POST
// xAPI-like statements to /addLog, cross-origin, with a Basic credential,
// and forget them. Each statement is handed to the recorder's writer and
// acknowledged (2xx) only once it is committed to the buffer, through the
// same group commit as websocket frames; a refusal is a 503, never a 2xx.
// The body is kept byte for byte, with the call's three query parameters
// and the time it arrived; nothing else about the client unless asked.
package addlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/practable/lablog/internal/platform/defaults"
	"github.com/practable/lablog/internal/platform/httpserve"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/statement"
)

// DefaultMaxBody is the largest statement accepted: achievement-sized
// statements are a few KiB.
const DefaultMaxBody = 64 << 10

// StreamPrefix starts the name of the stream statements of one kind of
// hardware are recorded in: addlog-spinner, addlog-pendulum, ...
const StreamPrefix = "addlog-"

// Options configure the handler.
type Options struct {
	Credentials    Credentials
	AllowedOrigins []string // browser origins (scheme://host[:port]) allowed to call; "*" allows any
	MaxBody        int64    // bytes; 0 means DefaultMaxBody
	// KeepClientAddress records the client's address with each statement
	// (off: a statement's record says nothing about who sent it).
	KeepClientAddress bool
	// TrustedProxies are the addresses whose X-Forwarded-For is believed,
	// for the client address kept and for rate limiting.
	TrustedProxies []netip.Prefix
	// Enqueue hands a record to the recorder's writer; false when its
	// queue is full or the buffer refuses frames.
	Enqueue func(frame.Record) bool
	// ClockSynced tells whether the wall clock is NTP-synced now.
	ClockSynced func() bool
	Now         func() time.Time
	Logger      *slog.Logger
}

// Handler serves:
//
//	POST    /addLog?username=&course=&hardware=  record one statement
//	OPTIONS /addLog                              the browsers' CORS preflight
//	GET     /verbs/{verb}                        what a verb means
type Handler struct {
	opts    Options
	origins httpserve.Origins
	failed  *failureLimit
	stats   stats
	mux     *http.ServeMux
}

// New makes the handler.
func New(o Options) *Handler {
	defaults.Positive(&o.MaxBody, DefaultMaxBody)
	defaults.Clock(&o.Now)
	if o.ClockSynced == nil {
		o.ClockSynced = func() bool { return false }
	}
	defaults.Logger(&o.Logger)
	h := &Handler{opts: o, origins: httpserve.NewOrigins(o.AllowedOrigins), failed: newFailureLimit(10, time.Minute)}
	h.stats.init()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /addLog", h.serveAddLog)
	mux.HandleFunc("OPTIONS /addLog", h.servePreflight)
	mux.HandleFunc("GET /verbs/{verb}", h.serveVerb)
	h.mux = mux
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// preflightMaxAge is how long a browser may reuse a preflight's answer.
const preflightMaxAge = "600"

func (h *Handler) servePreflight(w http.ResponseWriter, r *http.Request) {
	if h.origins.Allow(w, r) {
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "authorization, content-type")
		w.Header().Set("Access-Control-Max-Age", preflightMaxAge)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) serveAddLog(w http.ResponseWriter, r *http.Request) {
	h.origins.Allow(w, r)
	now := h.opts.Now()
	client := h.clientAddr(r)
	if h.failed.blocked(client.String(), now) {
		h.stats.limited.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(int(h.failed.retryAfter(now).Seconds()+0.5)))
		http.Error(w, "too many failed logins: try again later", http.StatusTooManyRequests)
		return
	}
	if !h.opts.Credentials.Allow(r) {
		h.failed.fail(client.String(), now)
		h.stats.unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="lablog", charset="UTF-8"`)
		http.Error(w, "a valid Basic credential is required", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.stats.tooLarge.Add(1)
		http.Error(w, fmt.Sprintf("statement over %d bytes", h.opts.MaxBody), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		// The client went away or stalled past the server's timeout.
		http.Error(w, "reading the statement: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	kept := url.Values{}
	for _, k := range []string{"username", "course", "hardware"} {
		if q.Has(k) {
			kept.Set(k, q.Get(k))
		}
	}
	if h.opts.KeepClientAddress {
		kept.Set("client", client.String())
	}
	hardware := q.Get("hardware")
	done := make(chan error, 1)
	rec := frame.Record{
		Stream:      StreamName(hardware),
		Received:    now,
		ClockSynced: h.opts.ClockSynced(),
		Kind:        frame.Statement,
		Data:        frame.StatementData(kept, body),
		Committed:   done,
	}
	if !h.opts.Enqueue(rec) {
		h.refuse(w, "the recorder is not taking statements now")
		return
	}
	select {
	case err := <-done:
		if err != nil {
			h.refuse(w, "not recorded: "+err.Error())
			return
		}
	case <-r.Context().Done():
		// The client gave up first; the statement may yet be committed,
		// but no one is told it was.
		return
	}
	h.stats.recorded(hardware, statement.Parse(body).Verb, now)
	w.WriteHeader(http.StatusNoContent)
}

// refuseRetry is when a refused client may try again.
const refuseRetry = "5"

func (h *Handler) refuse(w http.ResponseWriter, why string) {
	h.stats.refused.Add(1)
	w.Header().Set("Retry-After", refuseRetry)
	http.Error(w, why, http.StatusServiceUnavailable)
}

func (h *Handler) serveVerb(w http.ResponseWriter, r *http.Request) {
	h.origins.Allow(w, r)
	name := r.PathValue("verb")
	def, ok := verbs[name]
	if !ok {
		http.Error(w, "unknown verb "+strconv.Quote(name), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s: %s\n", name, def)
}

// clientAddr is the request's client: its peer, or, when the peer is a
// trusted proxy, the nearest untrusted address in X-Forwarded-For.
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap()
	if !h.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for _, hop := range slices.Backward(hops) {
		a, err := netip.ParseAddr(strings.TrimSpace(hop))
		if err != nil {
			break
		}
		addr = a.Unmap()
		if !h.trusted(addr) {
			break
		}
	}
	return addr
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// StreamName is the stream statements for hardware are recorded in: the
// name lower-cased, anything but letters, digits and '-' made '-', at most
// 40 characters; "none" when the UI sent none.
func StreamName(hardware string) string {
	if hardware == "" {
		hardware = "none"
	}
	var b strings.Builder
	for _, c := range strings.ToLower(hardware) {
		if b.Len() == 40 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return StreamPrefix + b.String()
}
