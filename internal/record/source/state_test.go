package source

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// The state and LastError describe the present: connecting until the first
// connection however many dials fail, and no stale reason once connected.
func TestStatsStateFollowsEvents(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	type step func(*stats)
	fail := func(e string) step { return func(st *stats) { st.failed(e) } }
	connect := func(st *stats) { st.connected(now) }
	drop := func(e string) step { return func(st *stats) { st.disconnected(now, e) } }
	for _, tc := range []struct {
		name      string
		steps     []step
		state     string
		lastError string
	}{
		{"before Run", nil, StateConnecting, ""},
		{"first dials fail", []step{fail("dial: refused"), fail("dial: refused again")}, StateConnecting, "dial: refused again"},
		{"first connection", []step{fail("dial: refused"), connect}, StateConnected, ""},
		{"dropped", []step{connect, drop("read: EOF")}, StateReconnecting, "read: EOF"},
		{"dropped, dials fail", []step{connect, drop("read: EOF"), fail("dial: refused")}, StateReconnecting, "dial: refused"},
		{"back after an outage", []step{connect, drop("read: EOF"), fail("dial: refused"), connect}, StateConnected, ""},
		{"token expired, renewed, reconnected", []step{connect, drop(TokenExpiredState(now)), connect}, StateConnected, ""},
		{"shut down keeps the reason", []step{connect, drop("read: EOF"), fail("x"), connect, drop("")}, StateReconnecting, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st stats
			for _, s := range tc.steps {
				s(&st)
			}
			got := st.snapshot(now, time.Hour)
			if got.State != tc.state || got.LastError != tc.lastError {
				t.Fatalf("state %q last error %q, want %q %q", got.State, got.LastError, tc.state, tc.lastError)
			}
		})
	}
}

// A never connected stream whose dials fail shows connecting, with why.
func TestNeverConnectedIsConnecting(t *testing.T) {
	sink := newSink()
	log, logs := newLog()
	var calls atomic.Int64
	cfg := fastConfig("spin36", "")
	cfg.Prepare = func(context.Context) (Target, error) {
		if calls.Add(1) == 1 {
			return Target{}, errors.New("relay access: connection refused")
		}
		<-t.Context().Done() // hold the second attempt while the test looks
		return Target{}, t.Context().Err()
	}
	src := start(t, cfg, sink, log)
	logs.await(t, "cannot connect")
	if st := src.Stats(); st.State != StateConnecting || st.LastError != "relay access: connection refused" {
		t.Fatalf("stats %+v", st)
	}
}

// closedURL is a ws URL nothing listens on: dials are refused at once.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/ws/x"
}

// The token's expiry stops the stream at the expiry, with an ERROR line
// then, whether connected or waiting to reconnect, not at the next dial
// (which here is an hour of backoff away).
func TestExpiryStopsStreamAtExpiry(t *testing.T) {
	for _, connected := range []bool{true, false} {
		name := "reconnecting"
		if connected {
			name = "connected"
		}
		t.Run(name, func(t *testing.T) {
			h := newHost(t)
			sink := newSink()
			log, logs := newLog()
			exp := time.Now().Add(300 * time.Millisecond)
			url := closedURL(t)
			if connected {
				url = h.StreamURL("spin37")
			}
			var calls atomic.Int64
			cfg := fastConfig("spin37", "")
			cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
			cfg.BlockedRetry = time.Hour
			cfg.Prepare = func(context.Context) (Target, error) {
				calls.Add(1)
				return Target{URL: url, TokenExpiry: exp}, nil
			}
			src := start(t, cfg, sink, log)
			m := logs.await(t, "stream stopped")
			if late := time.Since(exp); late < 0 || late > 2*time.Second {
				t.Fatalf("stopped %v after the expiry", late)
			}
			if !strings.HasPrefix(m, "ERROR stream stopped: "+TokenExpiredState(exp)) {
				t.Fatalf("log %q", m)
			}
			st := src.Stats()
			if st.State != TokenExpiredState(exp) || st.TokenState != TokenExpired || st.Connected {
				t.Fatalf("stats %+v", st)
			}
			if connected {
				if d := sink.until(t, frame.Disconnected); string(d.Data) != TokenExpiredState(exp) {
					t.Fatalf("reason %q", d.Data)
				}
			}
		})
	}
}

// The state names the expiry's date and time in UTC.
func TestTokenExpiredStateHasTime(t *testing.T) {
	exp := time.Date(2026, 12, 2, 14, 3, 5, 0, time.FixedZone("CET", 3600))
	if got, want := TokenExpiredState(exp), "token expired at 2026-12-02 13:03:05 UTC"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// A token is warned about once, however often the stream reconnects; a
// new token (another TokenID) is warned about again.
func TestExpiryWarningOncePerToken(t *testing.T) {
	h := newHost(t)
	sink := newSink()
	log, logs := newLog()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	var id atomic.Value
	id.Store("token-a")
	cfg := fastConfig("spin38", h.StreamURL("spin38"))
	cfg.Prepare = func(context.Context) (Target, error) {
		return Target{TokenExpiry: exp, TokenID: id.Load().(string)}, nil
	}
	warnings := 0
	count := func() {
		for {
			select {
			case m := <-logs.msgs:
				if strings.Contains(m, "relay token expires soon") {
					warnings++
				}
			default:
				return
			}
		}
	}
	start(t, cfg, sink, log)
	for i := range 4 {
		if i == 3 {
			id.Store("token-b") // renewed with a token of the same expiry
		}
		sink.until(t, frame.Connected)
		if err := h.WaitClients(ctx(t), "spin38", 1); err != nil {
			t.Fatal(err)
		}
		count()
		h.DropClients("spin38")
		sink.until(t, frame.Disconnected)
	}
	sink.until(t, frame.Connected)
	count()
	if warnings != 2 {
		t.Fatalf("%d warnings for 2 tokens over 5 connections", warnings)
	}
}
