package relay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/testkit"
)

// rig is one scenario's relay, lablog, senders and peers.
type rig struct {
	t       *testing.T
	serve   *relayServe
	writeTk string // folder of the senders' write tokens
	readTk  string // folder of lablog's (and the peers') read tokens
	senders map[string]*sender
	peers   map[string]*peer
	lablog  *lablogProc
	// viaHost marks the streams lablog reads through a relay host.
	viaHost map[string]bool
}

// hostDropAllowance: the real relay host hands each frame to a local
// client through an unbuffered channel and drops it when the client's
// writer is not waiting at that instant (docs/relay.md), so under CPU load
// a frame now and then never reaches lablog, through no fault of its own.
// Up to this many missing messages of a stream read through a host are
// logged rather than failed, and only while lablog itself dropped nothing
// (no Overflow record); any more, or any on a direct stream, fail.
const hostDropAllowance = 2

// readThroughHost marks names as streams lablog reads through a relay host.
func (r *rig) readThroughHost(names ...string) {
	if r.viaHost == nil {
		r.viaHost = map[string]bool{}
	}
	for _, n := range names {
		r.viaHost[n] = true
	}
}

// lacks judges missing messages of stream name: what lablog lacks fails
// the test, except a few on a host path as hostDropAllowance says.
func (r *rig) lacks(name string, missing int, format string, args ...any) {
	r.t.Helper()
	if missing == 0 {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if r.viaHost[name] && missing <= hostDropAllowance && r.lablog.overflows[name] == 0 {
		r.t.Logf("%s: put down to the relay host's unbuffered hand-off (lablog dropped nothing itself)", msg)
		return
	}
	r.t.Error(msg)
}

// newRig starts relay serve and mints tokens for streams: read tokens
// of readLife for lablog, one-hour write tokens for the senders.
func newRig(t *testing.T, readLife time.Duration, streams ...string) *rig {
	t.Helper()
	need(t)
	r := &rig{t: t, serve: newServe(t), writeTk: t.TempDir(), readTk: t.TempDir(),
		senders: map[string]*sender{}, peers: map[string]*peer{}}
	r.serve.tokens(r.writeTk, time.Hour, true, streams...)
	r.serve.tokens(r.readTk, readLife, false, streams...)
	for _, s := range streams {
		r.senders[s] = newSender(r.serve, s, token(t, r.writeTk, s))
		t.Cleanup(r.senders[s].close)
	}
	return r
}

func (r *rig) list() []*sender {
	var out []*sender
	for _, s := range r.senders {
		out = append(out, s)
	}
	return out
}

// peer starts `relay client file` on stream with a read token of its own.
func (r *rig) peer(stream string) {
	r.t.Helper()
	dir := r.t.TempDir()
	r.serve.tokens(dir, time.Hour, false, stream)
	r.peers[stream] = startPeer(r.t, r.serve, stream, token(r.t, dir, stream))
}

// connected says whether lablog and every peer have recorded traffic of
// every stream: warm-up messages reach them end to end.
func (r *rig) connected() bool {
	st, err := r.lablog.streams()
	if err != nil {
		return false
	}
	for name := range r.senders {
		if s, ok := st[name]; !ok || s.MessagesTotal == 0 {
			return false
		}
	}
	for _, p := range r.peers {
		if ls, _ := p.lines(); len(ls) == 0 {
			return false
		}
	}
	return true
}

// awaitBack waits, at most limit, until lablog has a message of every
// stream recorded after since (a stream's last message only moves on). It
// does not fail: what came back, and when, is judged from the records.
func (r *rig) awaitBack(limit time.Duration, since time.Time) {
	testkit.PollEvery(limit, pollEvery, func() bool {
		st, err := r.lablog.streams()
		if err != nil {
			return false
		}
		for name := range r.senders {
			if s := st[name]; s.LastMessageAt == nil || !s.LastMessageAt.After(since) {
				return false
			}
		}
		return true
	})
}

// settle waits until lablog and the peers have what was sent: each
// recorder's last frame is no older than its stream's last message, or
// nothing more arrives for 2 s (a recorder that lost the last frames).
func (r *rig) settle(limit time.Duration) {
	r.t.Helper()
	var lastChange time.Time
	var prev string
	var lastErr error
	names := slices.Sorted(maps.Keys(r.senders)) // a stable order for sig
	ok := testkit.PollEvery(limit, pollEvery, func() bool {
		st, err := r.lablog.streams()
		if err != nil {
			lastErr = err
			return false
		}
		done := true
		sig := ""
		for _, name := range names {
			s := r.senders[name]
			_, last := s.sent()
			ls := st[name]
			sig += fmt.Sprintf("%s:%d;", name, ls.BytesTotal)
			if ls.LastMessageAt == nil || ls.LastMessageAt.Before(last) {
				done = false
			}
			if p := r.peers[name]; p != nil {
				lines, _ := p.lines()
				sig += fmt.Sprintf("%d;", len(lines))
				if len(lines) == 0 || lines[len(lines)-1].at.Before(last) {
					done = false
				}
			}
		}
		if sig != prev {
			prev, lastChange = sig, time.Now()
		}
		return done || time.Since(lastChange) > 2*time.Second
	})
	if !ok {
		r.t.Fatalf("recorders still busy after %v (last status error: %v)", limit, lastErr)
	}
}

// result compares lablog's and the peers' records of each stream with
// what was sent; exact demands that lablog has every message sent.
func (r *rig) result(scenario string, lab map[string][]received, exact bool) (sent, got, peerGot int) {
	r.t.Helper()
	for name, s := range r.senders {
		n, _ := s.sent()
		tl := count(lab[name])
		sent += n
		got += len(tl.first)
		if tl.dups > 0 {
			r.t.Errorf("%s: lablog recorded %d messages of %s twice", scenario, tl.dups, name)
		}
		if miss := tl.missing(upTo(n)); exact {
			r.lacks(name, len(miss), "%s: lablog lacks %d of %d messages of %s (first %v)", scenario, len(miss), n, name, miss[:min(len(miss), 10)])
		}
		if p := r.peers[name]; p != nil {
			lines, err := p.lines()
			if err != nil {
				r.t.Fatal(err)
			}
			ptl := count(lines)
			peerGot += len(ptl.first)
			r.t.Logf("%s: %s sent %d, lablog %d (%.1f%%), peer %d (%.1f%%)", scenario, name, n,
				len(tl.first), pct(len(tl.first), n), len(ptl.first), pct(len(ptl.first), n))
		} else {
			r.t.Logf("%s: %s sent %d, lablog %d (%.1f%%)", scenario, name, n, len(tl.first), pct(len(tl.first), n))
		}
	}
	return sent, got, peerGot
}

// TestDirect: `relay:` streams read straight from relay serve record
// every message of steady traffic, as the relay's own client does.
func TestDirect(t *testing.T) {
	t.Parallel()
	streams := []string{"spin30", "spin31", "spin32", "spin33"}
	r := newRig(t, time.Hour, streams...)
	r.peer("spin30")
	r.lablog = startLablog(t, r.readTk, fmt.Sprintf("{name: spin30-33, relay: %s}", r.serve.Base()))
	warmUp(t, r.list(), 30*time.Second, r.connected)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	steady(ctx, r.list(), 20).Wait()
	cancel()
	r.settle(20 * time.Second)
	r.lablog.verify()
	sent, got, _ := r.result("direct", r.lablog.records(), true)
	t.Logf("direct: %d streams x 20 msg/s: sent %d, lablog %d", len(streams), sent, got)
}
