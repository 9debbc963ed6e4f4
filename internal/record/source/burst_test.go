package source

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

// burstServer is a loopback double of the relay in a burst: frames a sender
// writes back to back are read, put on a bounded per-client queue (dropped
// when it is full, as the relay drops for a slow client) and written to the
// client by one writer. The sender's socket is read as fast as Go can, so
// what reaches the client depends on how fast the client drains its own
// socket compared with that.
type burstServer struct {
	srv     *httptest.Server
	queue   chan []byte
	ready   chan struct{}
	sender  *websocket.Conn
	sent    atomic.Int64 // frames the relay read from the sender
	dropped atomic.Int64 // of those, dropped for a full queue
	written atomic.Int64
}

func newBurstServer(t *testing.T, queue int) *burstServer {
	b := &burstServer{queue: make(chan []byte, queue), ready: make(chan struct{})}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/send", func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			b.sent.Add(1)
			select {
			case b.queue <- data:
			default:
				b.dropped.Add(1)
			}
		}
	})
	mux.HandleFunc("/ws/", func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		close(b.ready)
		go func() { // read control frames so pings are answered
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
		// Like the relay, join what is queued into one frame: the writer
		// keeps up with the sender, so the client's reading is what counts.
		for data := range b.queue {
			n := int64(1)
			for more := true; more; {
				select {
				case d := <-b.queue:
					data = append(data, d...)
					n++
				default:
					more = false
				}
			}
			if err := conn.WriteMessage(websocket.TextMessage, data); err != nil {
				return
			}
			b.written.Add(n)
		}
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	sender, _, err := websocket.DefaultDialer.Dial(b.wsURL("/send"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })
	b.sender = sender
	return b
}

func (b *burstServer) wsURL(path string) string { return "ws" + b.srv.URL[len("http"):] + path }

// burst sends n frames back to back and waits until the relay read them.
func (b *burstServer) burst(t *testing.T, n int) {
	want := b.sent.Load() + int64(n)
	for i := range n {
		data := fmt.Appendf(nil, `{"user":"u%04d","t":%d,"type":"log","payload":{"event":"drag","x":%d,"y":%d,"pad":"%0150d"}}`, i%100, i, i, i*2, i)
		if err := b.sender.WriteMessage(websocket.TextMessage, data); err != nil {
			t.Fatal(err)
		}
	}
	// Not a check: a figure follows, in which what the relay missed counts.
	testkit.Poll(wait, func() bool { return b.sent.Load() >= want })
}

// msgStart begins every message of a burst, to count them in joined frames.
var msgStart = []byte(`{"user"`)

// countSink stands for the writer's queue: a non-blocking channel send,
// drained by another goroutine.
type countSink struct {
	ch     chan frame.Record
	frames atomic.Int64
}

func newCountSink() *countSink {
	s := &countSink{ch: make(chan frame.Record, 16384)}
	go func() {
		for r := range s.ch {
			if r.Kind == frame.Text {
				s.frames.Add(int64(bytes.Count(r.Data, msgStart)))
			}
		}
	}()
	return s
}

func (s *countSink) Enqueue(r frame.Record) bool {
	select {
	case s.ch <- r:
		return true
	default:
		return false
	}
}

// runBursts sends bursts of n frames through a burstServer to a source and
// returns frames recorded and sent.
func runBursts(t *testing.T, bursts, n, queue int) (recorded, sent int64) {
	b := newBurstServer(t, queue)
	sink := newCountSink()
	cfg := Config{Stream: "burst", URL: b.wsURL("/ws/burst"), Now: SystemNow}
	cfg.Logger = slog.New(slog.DiscardHandler)
	src := New(cfg, sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = src.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-b.ready:
	case <-time.After(wait):
		t.Fatal("source did not connect")
	}
	for range bursts {
		b.burst(t, n)
		// Until the burst is through: bounded, polling counters that have
		// no event to wait on; what is not through in time counts as lost.
		testkit.Poll(wait, func() bool {
			return b.written.Load() >= b.sent.Load()-b.dropped.Load() && sink.frames.Load() >= b.written.Load()
		})
	}
	return sink.frames.Load(), b.sent.Load()
}

// TestBurstFigures prints frames recorded / sent for LABLOG_BURSTS runs of
// 3 bursts of 2000 back-to-back frames through a relay-like queue of 256
// frames (LABLOG_BURST_QUEUE), and the same for a client that only reads:
//
//	LABLOG_BURSTS=5 go test ./internal/record/source -run TestBurstFigures -v
func TestBurstFigures(t *testing.T) {
	runs, err := strconv.Atoi(os.Getenv("LABLOG_BURSTS"))
	if err != nil {
		t.Skip("set LABLOG_BURSTS (e.g. 5) to measure")
	}
	queue := 256
	if q, err := strconv.Atoi(os.Getenv("LABLOG_BURST_QUEUE")); err == nil {
		queue = q
	}
	var rec, sent int64
	for i := range runs {
		r, s := runBursts(t, 3, 2000, queue)
		t.Logf("run %d: recorded %d of %d (%.1f%%)", i, r, s, 100*float64(r)/float64(s))
		rec, sent = rec+r, sent+s
	}
	t.Logf("all runs: recorded %d of %d (%.1f%%)", rec, sent, 100*float64(rec)/float64(sent))
	rec, sent = 0, 0
	for range runs {
		r, s := bareBursts(t, 3, 2000, queue)
		rec, sent = rec+r, sent+s
	}
	t.Logf("bare reader (the peer's ceiling): received %d of %d (%.1f%%)", rec, sent, 100*float64(rec)/float64(sent))
}

// bareBursts is runBursts with a client that only reads and counts, as a
// reference for how fast a socket can be drained.
func bareBursts(t *testing.T, bursts, n, queue int) (received, sent int64) {
	b := newBurstServer(t, queue)
	conn, _, err := websocket.DefaultDialer.Dial(b.wsURL("/ws/bare"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got atomic.Int64
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			got.Add(int64(bytes.Count(data, msgStart)))
		}
	}()
	<-b.ready
	for range bursts {
		b.burst(t, n)
		testkit.Poll(wait, func() bool {
			return b.written.Load() >= b.sent.Load()-b.dropped.Load() && got.Load() >= b.written.Load()
		})
	}
	return got.Load(), b.sent.Load()
}

// BenchmarkDrain is how fast a source drains its socket (ns per 200-byte
// frame, from a server that writes them in large chunks, so the reader is
// the bottleneck); "bare" is a client that only reads, the peer's ceiling.
//
//	go test ./internal/record/source -run XXX -bench Drain -benchtime 200000x -count 5
func BenchmarkDrain(b *testing.B) {
	frame200 := bytes.Repeat([]byte("x"), 200)
	serve := func(n int) *httptest.Server {
		up := websocket.Upgrader{}
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			go func() {
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						return
					}
				}
			}()
			// Pre-encoded frames in large writes: the server is never the
			// bottleneck, the reading client is.
			hdr := []byte{0x81, 126, byte(len(frame200) >> 8), byte(len(frame200))}
			var chunk []byte
			for range 256 {
				chunk = append(append(chunk, hdr...), frame200...)
			}
			for left := n; left > 0; left -= 256 {
				c := chunk
				if left < 256 {
					c = chunk[:left*(len(hdr)+len(frame200))]
				}
				if _, err := conn.NetConn().Write(c); err != nil {
					return
				}
			}
			<-r.Context().Done()
		}))
	}
	b.Run("source", func(b *testing.B) {
		srv := serve(b.N)
		defer srv.Close()
		done := make(chan struct{})
		var got atomic.Int64
		sink2 := sinkFunc(func(r frame.Record) bool {
			if r.Kind == frame.Text && got.Add(1) == int64(b.N) {
				close(done)
			}
			return true
		})
		b.ResetTimer()
		src := New(Config{Stream: "drain", URL: "ws" + srv.URL[len("http"):] + "/ws/d", Now: SystemNow, Logger: slog.New(slog.DiscardHandler)}, sink2)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = src.Run(ctx) }()
		<-done
		b.StopTimer()
		cancel()
	})
	b.Run("bare", func(b *testing.B) {
		srv := serve(b.N)
		defer srv.Close()
		b.ResetTimer()
		conn, _, err := websocket.DefaultDialer.Dial("ws"+srv.URL[len("http"):]+"/ws/d", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		for range b.N {
			if _, _, err := conn.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type sinkFunc func(frame.Record) bool

func (f sinkFunc) Enqueue(r frame.Record) bool { return f(r) }
