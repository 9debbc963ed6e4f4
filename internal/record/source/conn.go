package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/record/frame"
)

// shutdown is the Disconnected reason when Run's context ends.
const shutdown = "shutdown"

// writeWait bounds control-frame writes, so a stuck peer cannot stall pings
// or shutdown.
const writeWait = 5 * time.Second

// writeBuffers lends a connection its write buffer only while it writes a
// data frame, which lablog never does (pings and pongs are control frames
// with their own): 4 KiB less per stream, 320 KiB at 80.
var writeBuffers sync.Pool

// dial connects to url. Gorilla heeds ctx only until TCP is up, so the raw
// connection is also closed if ctx ends during the handshake.
func (s *Source) dial(ctx context.Context, url string) (*websocket.Conn, error) {
	s.redacted = redactURL(url)
	var mu sync.Mutex
	var raw net.Conn
	d := websocket.Dialer{
		HandshakeTimeout: s.cfg.HandshakeTimeout,
		WriteBufferPool:  &writeBuffers,
		Proxy:            http.ProxyFromEnvironment,
		NetDialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil { // ctx ended before raw was set
				c.Close()
				return nil, ctx.Err()
			}
			raw = c
			return c, nil
		},
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			raw.Close()
		}
	})
	conn, resp, err := d.DialContext(ctx, url, nil)
	if !stop() && err == nil {
		conn.Close() // ctx ended: the handshake may have been cut
		return nil, ctx.Err()
	}
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("dial %s: %w", s.redacted, err)
	}
	return conn, nil
}

// serve reads conn until it fails, ctx ends or the target's token expires,
// bracketing the frames with Connected and Disconnected records. It
// reports whether the token expired, which has stopped the stream.
func (s *Source) serve(ctx context.Context, conn *websocket.Conn, target Target) (expired bool) {
	now, _ := s.cfg.Now()
	s.stats.connected(now)
	s.log.Info("connected", logkey.URL, s.redacted)
	s.event(frame.Connected, s.redacted)

	conn.SetReadLimit(s.cfg.ReadLimit)
	s.extendDeadline(conn)
	conn.SetPongHandler(func(string) error { s.extendDeadline(conn); return nil })
	conn.SetPingHandler(func(data string) error {
		s.extendDeadline(conn)
		// A failed pong is not an error of its own: a broken connection
		// shows up on the next read.
		_ = conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		return nil
	})

	stop := make(chan struct{})
	pingFailed := make(chan error, 1)
	pinger := make(chan struct{})
	expiredC := make(chan struct{})
	go func() {
		defer close(pinger)
		s.keepAlive(ctx, conn, stop, pingFailed, target, expiredC)
	}()
	err := s.read(conn)
	close(stop)
	<-pinger
	conn.Close()

	if errors.Is(err, websocket.ErrReadLimit) {
		// The frame was not read and the connection is out of step: record
		// the fact, then reconnect.
		s.event(frame.Oversize, fmt.Sprintf("frame over read limit of %d bytes", s.cfg.ReadLimit))
	}
	reason := s.reason(ctx, err, pingFailed)
	select {
	case <-expiredC:
		expired = true
	default:
		// The relay may close at expiry a moment before our own timer.
		now, _ := s.cfg.Now()
		expired = reason != shutdown && !target.TokenExpiry.IsZero() && !now.Before(target.TokenExpiry)
	}
	if expired {
		reason = TokenExpiredState(target.TokenExpiry)
	}
	now, _ = s.cfg.Now()
	level, errText := slog.LevelWarn, reason
	if reason == shutdown {
		level, errText = slog.LevelInfo, ""
	}
	s.stats.disconnected(now, errText)
	s.log.Log(ctx, level, "disconnected", "reason", reason)
	s.event(frame.Disconnected, reason)
	if expired {
		s.expire(target.TokenExpiry)
	}
	return expired
}

// handoff is how many frames the read loop may be ahead of their handling.
const handoff = 1024

// maxKeptReadBuffer is the largest read buffer kept between frames.
const maxKeptReadBuffer = 64 << 10

// received is a frame as read, with its time.
type received struct {
	kind   frame.Kind
	data   []byte
	at     time.Time
	synced bool
}

// read hands every frame to the sink until the connection fails. The loop
// only reads and hands frames off: counting and queueing run on another
// goroutine, so the socket is drained as fast as a bare reader drains it and
// a burst stays in our memory rather than in the relay's queue, which drops
// when full. Each frame is read into one reused buffer and handed off as an
// exact-size copy: the record owns its bytes, a small frame does not pin a
// large buffer while it waits in the queue, and a frame costs one allocation
// where ReadMessage grows a fresh buffer for every frame.
func (s *Source) read(conn *websocket.Conn) error {
	frames := newHandoffQueue(handoff)
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		// The batch grows to takeMax only when takes fill it: a quiet
		// stream holds one slot, not 4 KiB.
		batch := make([]received, 1)
		for {
			n := frames.take(batch)
			if n == 0 {
				return
			}
			for _, f := range batch[:n] {
				s.stats.frame(f.at, len(f.data))
				s.emitAt(f.at, f.synced, f.kind, f.data)
			}
			clear(batch[:n]) // the records own the data now
			if n == len(batch) && n < takeMax {
				batch = make([]received, min(2*n, takeMax))
			}
		}
	}()
	defer func() { frames.close(); <-handled }()

	// Moving the deadline costs a timer update: once per step is enough.
	step := min(time.Second, s.cfg.ReadTimeout/10)
	var extended time.Time
	var buf bytes.Buffer
	for {
		typ, r, err := conn.NextReader()
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		if t := time.Now(); t.Sub(extended) >= step {
			s.extendDeadline(conn)
			extended = t
		}
		kind := frame.Text
		if typ == websocket.BinaryMessage {
			kind = frame.Binary
		}
		now, synced := s.cfg.Now()
		data := make([]byte, buf.Len()) // never nil: an empty frame is a record too
		copy(data, buf.Bytes())
		frames.put(received{kind: kind, data: data, at: now, synced: synced})
		if buf.Cap() > maxKeptReadBuffer {
			buf = bytes.Buffer{} // one huge frame should not stay resident
		}
	}
}

// reason says why the connection ended, given the read error.
func (s *Source) reason(ctx context.Context, err error, pingFailed <-chan error) string {
	if ctx.Err() != nil {
		return shutdown
	}
	select {
	case perr := <-pingFailed:
		if errors.Is(err, net.ErrClosed) { // the pinger closed it
			return "ping: " + perr.Error()
		}
	default:
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return "read timeout: no frame or pong for " + seconds(s.cfg.ReadTimeout)
	}
	return "read: " + err.Error()
}

func (s *Source) extendDeadline(conn *websocket.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
}

// keepAlive pings every PingInterval, so the peer's pongs keep the read
// deadline moving on a quiet stream and a half-open connection times out.
// When ctx ends, or the token expires (closing expired), it closes the
// connection politely, which ends the read. It also warns when the token
// comes within TokenWarning of its expiry while connected.
func (s *Source) keepAlive(ctx context.Context, conn *websocket.Conn, stop <-chan struct{}, failed chan<- error,
	target Target, expired chan<- struct{}) {
	tokenExpiry := target.TokenExpiry
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	var expiry, warn <-chan time.Time
	if !tokenExpiry.IsZero() {
		now, _ := s.cfg.Now()
		et := time.NewTimer(tokenExpiry.Sub(now))
		defer et.Stop()
		expiry = et.C
		if d := tokenExpiry.Sub(now) - s.cfg.TokenWarning; d > 0 {
			wt := time.NewTimer(d)
			defer wt.Stop()
			warn = wt.C
		}
	}
	bye := func(reason string) {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		conn.Close()
	}
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			bye("lablog stopping")
			return
		case <-warn:
			s.warnExpiry(target)
		case <-expiry:
			close(expired)
			bye("token expired")
			return
		case <-t.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				failed <- err
				conn.Close()
				return
			}
		}
	}
}

// seconds prints whole seconds as "60s" rather than Duration's "1m0s".
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
