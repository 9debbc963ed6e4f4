package source

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/testkit"
)

func TestFramesArriveByteExact(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	fixed := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cfg := fastConfig("spin30", h.URL()+"/ws/spin30?code=secret")
	cfg.Now = func() (time.Time, bool) { return fixed, false }
	src := start(t, cfg, sink, nil)

	c := sink.next(t, frame.Connected)
	if got, want := string(c.Data), h.URL()+"/ws/spin30"; got != want {
		t.Fatalf("Connected data %q, want %q (no query string)", got, want)
	}
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}

	// Stats is read concurrently with the read loop; the race detector checks it.
	var wg sync.WaitGroup
	stopStats := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopStats:
				return
			default:
				_ = src.Stats()
			}
		}
	}()

	frames := []struct {
		data   []byte
		binary bool
	}{
		{[]byte(`{"user":"u","t":1,"payload":{"log":"start"}}`), false},
		{[]byte(`{"a":1}{"b": NaN}`), false},
		{[]byte{}, false},
		{[]byte("not json \xff\xfe"), false},
		{[]byte{0, 1, 2, 255}, true},
		{bytes.Repeat([]byte("x"), 64<<10), false},
	}
	var size int64
	for _, f := range frames {
		h.Publish("spin30", f.data, f.binary)
		size += int64(len(f.data))
	}
	for i, f := range frames {
		kind := frame.Text
		if f.binary {
			kind = frame.Binary
		}
		r := sink.next(t, kind)
		if !bytes.Equal(r.Data, f.data) {
			t.Errorf("frame %d: got %d bytes %.40q, want %d bytes %.40q", i, len(r.Data), r.Data, len(f.data), f.data)
		}
		if r.Stream != "spin30" || !r.Received.Equal(fixed) || r.ClockSynced {
			t.Errorf("frame %d: stream %q received %v synced %v", i, r.Stream, r.Received, r.ClockSynced)
		}
	}
	close(stopStats)
	wg.Wait()

	if got := len(h.Delivered("spin30")); got != len(frames) {
		t.Fatalf("host delivered %d frames, want %d", got, len(frames))
	}
	st := src.Stats()
	if !st.Connected || st.Frames != int64(len(frames)) || st.Bytes != size || st.Dropped != 0 ||
		st.Reconnects != 0 || !st.LastFrame.Equal(fixed) || st.Stream != "spin30" {
		t.Fatalf("stats %+v", st)
	}

	src.stop(t)
	if d := sink.next(t, frame.Disconnected); string(d.Data) != "shutdown" {
		t.Fatalf("Disconnected data %q, want shutdown", d.Data)
	}
	if st := src.Stats(); st.Connected {
		t.Fatalf("still connected after Run returned: %+v", st)
	}
}

func TestReconnectsAfterCut(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	src := start(t, fastConfig("spin31", h.URL()+"/ws/spin31"), sink, nil)
	sink.next(t, frame.Connected)
	if err := h.WaitClients(ctx(t), "spin31", 1); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		h.DropClients("spin31")
		d := sink.next(t, frame.Disconnected)
		if !strings.Contains(string(d.Data), "1006") || !strings.Contains(string(d.Data), "unexpected EOF") {
			t.Fatalf("cut %d: reason %q, want an abnormal closure", i, d.Data)
		}
		sink.next(t, frame.Connected)
		if err := h.WaitClients(ctx(t), "spin31", 1); err != nil {
			t.Fatal(err)
		}
		msg := []byte(`{"n":` + string(rune('0'+i)) + `}`)
		h.Publish("spin31", msg, false)
		if r := sink.next(t, frame.Text); !bytes.Equal(r.Data, msg) {
			t.Fatalf("after cut %d: got %q", i, r.Data)
		}
	}
	// Connected again: the reason of the last cut is history (the log's).
	st := src.Stats()
	if st.Reconnects != 3 || st.Connects != 4 || !st.Connected || st.LastError != "" || st.State != StateConnected {
		t.Fatalf("stats %+v", st)
	}
}

func TestHalfOpenConnectionTimesOut(t *testing.T) {
	h := newHost(t)
	h.Hang(true) // the peer completes the handshake, then never answers
	sink := newSink()
	cfg := fastConfig("spin32", h.URL()+"/ws/spin32")
	cfg.PingInterval = 20 * time.Millisecond
	cfg.ReadTimeout = 150 * time.Millisecond
	start(t, cfg, sink, nil)

	sink.next(t, frame.Connected)
	d := sink.next(t, frame.Disconnected)
	if got, want := string(d.Data), "read timeout: no frame or pong for 150ms"; got != want {
		t.Fatalf("reason %q, want %q", got, want)
	}

	// Once the peer answers again, the source recovers.
	h.Hang(false)
	h.DropClients("spin32") // ends hung connections the source may be on
	if err := h.WaitClients(ctx(t), "spin32", 1); err != nil {
		t.Fatal(err)
	}
	h.Publish("spin32", []byte("{}"), false)
	if r := sink.until(t, frame.Text); string(r.Data) != "{}" {
		t.Fatalf("got %q", r.Data)
	}
}

func TestPongsKeepQuietConnectionAlive(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	cfg := fastConfig("spin33", h.URL()+"/ws/spin33")
	cfg.PingInterval = 25 * time.Millisecond
	cfg.ReadTimeout = 250 * time.Millisecond
	src := start(t, cfg, sink, nil)
	sink.next(t, frame.Connected)

	// Four read timeouts without a frame: only pongs keep it up.
	sink.none(t, time.Second)
	if !src.Stats().Connected {
		t.Fatal("quiet connection was dropped")
	}
}

func TestOversizeFrameRecordedThenReconnects(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	cfg := fastConfig("spin34", h.URL()+"/ws/spin34")
	cfg.ReadLimit = 100
	start(t, cfg, sink, nil)
	sink.next(t, frame.Connected)
	if err := h.WaitClients(ctx(t), "spin34", 1); err != nil {
		t.Fatal(err)
	}

	h.Publish("spin34", bytes.Repeat([]byte("a"), 100), false) // at the limit: fine
	if r := sink.next(t, frame.Text); len(r.Data) != 100 {
		t.Fatalf("got %d bytes", len(r.Data))
	}
	h.Publish("spin34", bytes.Repeat([]byte("b"), 101), false)
	if r := sink.next(t, frame.Oversize); string(r.Data) != "frame over read limit of 100 bytes" {
		t.Fatalf("Oversize data %q", r.Data)
	}
	if r := sink.next(t, frame.Disconnected); !strings.Contains(string(r.Data), "read limit") {
		t.Fatalf("Disconnected data %q", r.Data)
	}
	sink.next(t, frame.Connected)
	if err := h.WaitClients(ctx(t), "spin34", 1); err != nil {
		t.Fatal(err)
	}
	h.Publish("spin34", []byte("{}"), false)
	sink.next(t, frame.Text)
}

func TestFullSinkCountsDropsThenOverflowRecord(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	log, logs := newLog()
	src := start(t, fastConfig("spin35", h.URL()+"/ws/spin35"), sink, log)
	sink.next(t, frame.Connected)
	if err := h.WaitClients(ctx(t), "spin35", 1); err != nil {
		t.Fatal(err)
	}

	sink.full.Store(true)
	const n = 7
	for range n {
		h.Publish("spin35", []byte(`{"lost":true}`), false)
	}
	for range n {
		recv(t, sink.refused)
	}
	// The sink signals a refusal just before the source counts it.
	if !testkit.Poll(wait, func() bool { return src.Stats().Dropped == n }) {
		t.Fatalf("Dropped = %d, want %d", src.Stats().Dropped, n)
	}
	// One warning for the burst, not one per frame.
	if m := logs.await(t, "writer queue full"); !strings.Contains(m, "dropped=1") || !strings.Contains(m, "stream=spin35") {
		t.Fatalf("warning %q", m)
	}

	sink.full.Store(false)
	h.Publish("spin35", []byte(`{"kept":true}`), false)
	if r := sink.next(t, frame.Overflow); string(r.Data) != "7" {
		t.Fatalf("Overflow data %q, want 7", r.Data)
	}
	if r := sink.next(t, frame.Text); string(r.Data) != `{"kept":true}` {
		t.Fatalf("after overflow got %q", r.Data)
	}
	for {
		select {
		case m := <-logs.msgs:
			if strings.Contains(m, "writer queue full") {
				t.Fatalf("second warning within 10s: %q", m)
			}
			continue
		default:
		}
		break
	}

	// A second episode counts from zero.
	sink.full.Store(true)
	h.Publish("spin35", []byte(`{"lost":2}`), false)
	recv(t, sink.refused)
	sink.full.Store(false)
	h.Publish("spin35", []byte(`{"kept":2}`), false)
	if r := sink.next(t, frame.Overflow); string(r.Data) != "1" {
		t.Fatalf("second Overflow data %q, want 1", r.Data)
	}
	sink.next(t, frame.Text)
	if got := src.Stats().Dropped; got != n+1 {
		t.Fatalf("Dropped = %d, want %d", got, n+1)
	}
}

func TestDialFailureIsReportedAndRetried(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	log, logs := newLog()
	src := start(t, fastConfig("bad", h.URL()+"/ws/api?token=secret"), sink, log)

	m := logs.await(t, "cannot connect")
	if !strings.Contains(m, "HTTP 404") || strings.Contains(m, "secret") {
		t.Fatalf("log line %q: want HTTP 404 and no secret", m)
	}
	logs.await(t, "cannot connect") // retried (at debug level)
	st := src.Stats()
	if st.Connected || !strings.Contains(st.LastError, "404") || strings.Contains(st.LastError, "secret") {
		t.Fatalf("stats %+v", st)
	}
	select {
	case r := <-sink.records:
		t.Fatalf("a failed dial recorded %v %q", r.Kind, r.Data)
	default:
	}
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	// A server that accepts TCP and hangs up makes every handshake fail.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	log, logs := newLog()
	cfg := fastConfig("spin36", "ws://"+ln.Addr().String()+"/ws/spin36")
	cfg.MinBackoff = time.Hour
	cfg.MaxBackoff = time.Hour
	r := start(t, cfg, newSink(), log)
	recv(t, accepted)
	logs.await(t, "cannot connect")
	r.stop(t) // fails unless Run returns within 2s
}

func TestCancelDuringHandshakeReturnsPromptly(t *testing.T) {
	// A server that accepts TCP and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	cfg := fastConfig("spin37", "ws://"+ln.Addr().String()+"/ws/spin37")
	cfg.HandshakeTimeout = time.Hour
	r := start(t, cfg, newSink(), nil)
	c := recv(t, accepted)
	defer c.Close()
	r.stop(t)
}

func TestRunRejectsUnusableConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Stream: "s", URL: "http://127.0.0.1/ws/s"},
		{Stream: "", URL: "ws://127.0.0.1/ws/s"},
		{Stream: "s", URL: "ws://127.0.0.1/ws/s", PingInterval: time.Minute, ReadTimeout: time.Minute},
		{Stream: "s", URL: "ws://[::1"},
	} {
		err := New(cfg, newSink()).Run(context.Background())
		if err == nil {
			t.Errorf("Run(%+v) = nil, want an error", cfg)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.ReadLimit != 1<<20 || c.PingInterval != 20*time.Second || c.ReadTimeout != time.Minute ||
		c.HandshakeTimeout != 10*time.Second || c.MinBackoff != time.Second || c.MaxBackoff != time.Minute ||
		c.StableAfter != 30*time.Second || c.Now == nil {
		t.Fatalf("defaults %+v", c)
	}
	c = Config{ReadLimit: 5}.WithDefaults()
	if c.ReadLimit != 5 {
		t.Fatal("WithDefaults overrode a set field")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://relay.example/session/spin30-log?code=abc": "wss://relay.example/session/spin30-log",
		"ws://user:pw@127.0.0.1:8888/ws/spin30#frag":      "ws://127.0.0.1:8888/ws/spin30",
		"ws://127.0.0.1:8888/ws/a/b-c":                    "ws://127.0.0.1:8888/ws/a/b-c",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSystemNow(t *testing.T) {
	now, synced := SystemNow()
	if d := time.Since(now); d < 0 || d > time.Second {
		t.Fatalf("SystemNow is %v off", d)
	}
	t.Logf("clock synced: %v", synced)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

// A run of failed dials is logged at WARN once, then once per RetryLogEvery
// with a count, and its end is logged; the retries between are DEBUG.
func TestDialFailuresLoggedAtABoundedRate(t *testing.T) {
	h := newHost(t)
	h.Refuse("spin37", true)
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	clock := func(d time.Duration) time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		return now
	}
	cfg := fastConfig("spin37", h.URL()+"/ws/spin37")
	cfg.Now = func() (time.Time, bool) { return clock(0), true }
	log, logs := newLog()
	start(t, cfg, newSink(), log)

	if m := logs.await(t, "cannot connect"); !strings.HasPrefix(m, "WARN cannot connect; retrying with backoff") {
		t.Fatalf("first failure: %q", m)
	}
	for range 5 { // retries within the minute: DEBUG only
		if m := logs.await(t, "cannot connect"); !strings.HasPrefix(m, "DEBUG cannot connect") {
			t.Fatalf("a retry within the minute: %q", m)
		}
	}
	clock(RetryLogEvery)
	m := logs.await(t, "still cannot connect")
	if !strings.HasPrefix(m, "WARN ") || !regexp.MustCompile(`failures=([7-9]|\d\d+) since_last_line=([6-9]|\d\d+) for=1m0s`).MatchString(m) {
		t.Errorf("the line a minute later: %q", m)
	}
	h.Refuse("spin37", false)
	if m := logs.await(t, "connected after failing"); !strings.Contains(m, "failures=") {
		t.Errorf("end of the run: %q", m)
	}
}
