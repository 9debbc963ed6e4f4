package source

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// Prepare runs before every dial and its URL is dialled, with the code
// kept out of the record.
func TestPrepareGivesURLBeforeEveryDial(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	var calls atomic.Int64
	cfg := fastConfig("spin30", "")
	cfg.Prepare = func(context.Context) (Target, error) {
		n := calls.Add(1)
		return Target{URL: h.StreamURL("spin30") + "?code=secret" + string(rune('0'+n))}, nil
	}
	src := start(t, cfg, sink, nil)
	if c := sink.next(t, frame.Connected); string(c.Data) != h.StreamURL("spin30") {
		t.Fatalf("Connected data %q, want the URL without its code", c.Data)
	}
	if err := h.WaitClients(ctx(t), "spin30", 1); err != nil {
		t.Fatal(err)
	}
	h.DropClients("spin30")
	sink.next(t, frame.Disconnected)
	sink.next(t, frame.Connected)
	if n := calls.Load(); n != 2 {
		t.Fatalf("Prepare called %d times for 2 dials", n)
	}
	st := src.Stats()
	if st.State != StateConnected || st.TokenState != TokenNone || !st.TokenExpiry.IsZero() {
		t.Fatalf("stats %+v", st)
	}
}

// A Blocked stream does not dial, says why in its state, logs it once and
// resumes by itself once Prepare succeeds again (a renewed token).
func TestBlockedStopsDiallingUntilPrepareSucceeds(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	log, logs := newLog()
	exp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var renewed atomic.Bool
	asked := make(chan struct{}, 100)
	cfg := fastConfig("spin31", h.StreamURL("spin31"))
	cfg.BlockedRetry = 5 * time.Millisecond
	cfg.Prepare = func(context.Context) (Target, error) {
		asked <- struct{}{}
		if !renewed.Load() {
			return Target{}, &Blocked{State: "token expired at 2026-01-02 03:04:05 UTC", TokenState: TokenExpired, TokenExpiry: exp}
		}
		return Target{TokenExpiry: time.Now().Add(365 * 24 * time.Hour)}, nil
	}
	src := start(t, cfg, sink, log)
	if m := logs.await(t, "stream stopped"); !strings.Contains(m, "token expired at 2026-01-02 03:04:05 UTC") || !strings.HasPrefix(m, "ERROR") {
		t.Fatalf("log %q", m)
	}
	for range 5 { // asked again and again, but never dials
		recv(t, asked)
	}
	st := src.Stats()
	if st.State != "token expired at 2026-01-02 03:04:05 UTC" || st.TokenState != TokenExpired || !st.TokenExpiry.Equal(exp) ||
		st.Connected || st.LastError != st.State || h.Clients("spin31") != 0 {
		t.Fatalf("stats %+v, host clients %d", st, h.Clients("spin31"))
	}
	select {
	case r := <-sink.records:
		t.Fatalf("a blocked stream recorded %v %q", r.Kind, r.Data)
	default:
	}
	for {
		select {
		case m := <-logs.msgs:
			if strings.Contains(m, "stream stopped") {
				t.Fatalf("blocked state logged twice: %q", m)
			}
			continue
		default:
		}
		break
	}
	renewed.Store(true)
	sink.next(t, frame.Connected)
	logs.await(t, "token usable again")
	if st := src.Stats(); st.State != StateConnected || st.TokenState != TokenOK {
		t.Fatalf("after renewal: stats %+v", st)
	}
}

// The source ends the connection when the token expires, saying so, and
// warns ahead of the expiry.
func TestTokenExpiryEndsConnection(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	log, logs := newLog()
	exp := time.Now().Add(300 * time.Millisecond)
	var calls atomic.Int64
	cfg := fastConfig("spin32", h.StreamURL("spin32"))
	cfg.BlockedRetry = time.Hour
	cfg.TokenWarning = 24 * time.Hour
	cfg.Prepare = func(context.Context) (Target, error) {
		if calls.Add(1) > 1 {
			return Target{}, &Blocked{State: TokenExpiredState(exp), TokenState: TokenExpired, TokenExpiry: exp}
		}
		return Target{TokenExpiry: exp}, nil
	}
	src := start(t, cfg, sink, log)
	sink.next(t, frame.Connected)
	if m := logs.await(t, "relay token expires soon"); !strings.Contains(m, "days_left=0") {
		t.Fatalf("warning %q", m)
	}
	if st := src.Stats(); st.TokenState != TokenExpiring || !st.TokenExpiry.Equal(exp) {
		t.Fatalf("stats before expiry %+v", st)
	}
	d := sink.next(t, frame.Disconnected)
	if want := TokenExpiredState(exp); string(d.Data) != want {
		t.Fatalf("reason %q, want %q", d.Data, want)
	}
	logs.await(t, "stream stopped")
	if st := src.Stats(); st.State != TokenExpiredState(exp) || st.TokenState != TokenExpired {
		t.Fatalf("stats after expiry %+v", st)
	}
}

// While connected, a token that comes within the warning period is
// warned about then, not only at the next dial.
func TestTokenWarningWhileConnected(t *testing.T) {
	h := newHost(t)
	log, logs := newLog()
	cfg := fastConfig("spin33", h.StreamURL("spin33"))
	cfg.TokenWarning = time.Hour
	exp := time.Now().Add(time.Hour + 200*time.Millisecond)
	cfg.Prepare = func(context.Context) (Target, error) { return Target{TokenExpiry: exp}, nil }
	src := start(t, cfg, newSink(), log)
	logs.await(t, "connected")
	if st := src.Stats(); st.TokenState != TokenOK {
		t.Fatalf("an hour and more ahead: token state %q", st.TokenState)
	}
	logs.await(t, "relay token expires soon")
	if st := src.Stats(); st.TokenState != TokenExpiring || st.State != StateConnected {
		t.Fatalf("stats %+v", st)
	}
}

// Any other Prepare error is a failed dial: retried with backoff, shown.
func TestPrepareErrorIsRetried(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	var calls atomic.Int64
	cfg := fastConfig("spin34", "")
	cfg.Prepare = func(context.Context) (Target, error) {
		if calls.Add(1) < 3 {
			return Target{}, errors.New("relay access: HTTP 502")
		}
		return Target{URL: h.StreamURL("spin34")}, nil
	}
	log, logs := newLog()
	src := start(t, cfg, sink, log)
	logs.await(t, "relay access: HTTP 502") // the history stays in the log
	sink.next(t, frame.Connected)
	st := src.Stats()
	if calls.Load() != 3 || st.LastError != "" || st.State != StateConnected {
		t.Fatalf("calls %d, stats %+v", calls.Load(), st)
	}
}

func TestStatesWithoutPrepare(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	src := New(fastConfig("spin35", h.StreamURL("spin35")), sink)
	if st := src.Stats(); st.State != StateConnecting {
		t.Fatalf("before Run: state %q", st.State)
	}
	r := start(t, fastConfig("spin35", h.StreamURL("spin35")), sink, nil)
	sink.next(t, frame.Connected)
	if err := h.WaitClients(ctx(t), "spin35", 1); err != nil {
		t.Fatal(err)
	}
	h.Close() // nothing to reconnect to
	sink.next(t, frame.Disconnected)
	if st := r.Stats(); st.State != StateReconnecting || st.TokenState != TokenNone {
		t.Fatalf("after a drop: stats %+v", st)
	}
}

// A token that cannot be read has no expiry: the stop line shows none
// rather than the zero time; a known expiry is shown as a date and time.
func TestStreamStoppedLogsOnlyKnownExpiry(t *testing.T) {
	for _, tc := range []struct {
		b    *Blocked
		want string
	}{
		{&Blocked{State: "token unreadable", TokenState: TokenInvalid}, "ERROR stream stopped: token unreadable stream=spin33"},
		{&Blocked{State: "token expired", TokenState: TokenExpired, TokenExpiry: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			"ERROR stream stopped: token expired stream=spin33 token_expiry=2026-01-02 03:04:05 UTC"},
	} {
		log, logs := newLog()
		cfg := fastConfig("spin33", "ws://127.0.0.1:1/ws/spin33")
		cfg.BlockedRetry = time.Hour
		b := tc.b
		cfg.Prepare = func(context.Context) (Target, error) { return Target{}, b }
		start(t, cfg, newSink(), log)
		if m := logs.await(t, "stream stopped"); m != tc.want {
			t.Errorf("got %q, want %q", m, tc.want)
		}
	}
}
