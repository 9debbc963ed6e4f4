package relay

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// recoveryTarget is issue 10's: p95 of the time to record again.
const recoveryTarget = 5 * time.Second

// TestServeRestart: relay serve dies under live traffic and comes back on
// the same ports after an outage. Direct and provisioned host streams must
// record again, with nothing missing before the outage or once they are
// back; the time to record again is compared with the peers'.
func TestServeRestart(t *testing.T) {
	t.Parallel()
	// The issue saw 9-12 s; long enough for backoffs to grow, within
	// the fast reconnect window (60 s) that follows a working connection.
	serveOutage(t, 8*time.Second, "", true)
}

// TestServeLongOutage: an outage that outlasts the fast reconnect window,
// with a min_backoff of 20 s, so that each stream's next wait is anything
// up to 20 s, then 40 s, when the relay comes back. The relay's probe (one
// request per 2 s for all its streams) must still bring the direct streams
// back within the recovery target. Host streams are left out: they come
// back on the relay host's own backoff, which TestServeRestart covers.
func TestServeLongOutage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a 75 s outage; not in -short")
	}
	serveOutage(t, 75*time.Second, ", min_backoff: 20s", false)
}

// serveOutage kills relay serve for outage under live traffic and checks
// what lablog recorded against the senders and peers: direct streams, and
// provisioned host streams when withHost.
func serveOutage(t *testing.T, outage time.Duration, sourcesKeys string, withHost bool) {
	direct := []string{"spin50", "spin51", "spin52", "spin53"}
	var hosted []string
	if withHost {
		hosted = []string{"pend10", "pend11"}
	}
	r := newRig(t, time.Hour, append(direct, hosted...)...)
	r.readThroughHost(hosted...)
	streams := []string{fmt.Sprintf("{name: spin50-53, relay: %s}", r.serve.Base())}
	if withHost {
		host := newHost(t)
		streams = append(streams, fmt.Sprintf("{name: pend10-11, relay_host: %s, tokens_dir: %s}", host.URL(), r.readTk))
	}
	for name := range r.senders {
		r.peer(name)
	}
	r.lablog = startLablogWith(t, r.readTk, sourcesKeys, streams...)
	warmUp(t, r.list(), 30*time.Second, r.connected)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := steady(ctx, r.list(), 20)
	time.Sleep(3 * time.Second) // traffic before the outage
	down := time.Now()
	r.serve.p.kill()
	time.Sleep(outage)
	up := r.serve.start()
	// start polls; a sender that joined earlier saw the relay back sooner.
	for _, s := range r.senders {
		s.mu.Lock()
		for _, j := range s.joins {
			if j.After(down) && j.Before(up) {
				up = j
			}
		}
		s.mu.Unlock()
	}

	// Wait (bounded) until every recorder has something sent after up.
	r.awaitBack(45*time.Second, up)
	time.Sleep(2 * time.Second) // traffic once every stream is back
	cancel()
	wg.Wait()
	r.settle(20 * time.Second)
	recs := r.lablog.records()
	sent, got, peerGot := r.result("serve restart", recs, false)

	var labGaps, peerGaps, sendGaps []float64
	for _, name := range append(direct, hosted...) {
		s := r.senders[name]
		tl := count(recs[name])
		if tl.dups > 0 {
			t.Errorf("serve restart: %s recorded %d messages twice", name, tl.dups)
		}
		// Steady traffic up to a second before the kill is all there.
		before := s.sentBetween(time.Time{}, down.Add(-time.Second))
		miss := tl.missing(before)
		r.lacks(name, len(miss), "serve restart: %s lacks %d of %d messages sent before the outage", name, len(miss), len(before))
		lines, err := r.peers[name].lines()
		if err != nil {
			t.Fatal(err)
		}
		ptl := count(lines)
		labGap, peerGap, sendGap := math.Inf(1), math.Inf(1), math.Inf(1)
		if at, ok := firstAfter(recs[name], up); ok {
			labGap = at.Sub(up).Seconds()
			after := s.sentBetween(at.Add(200*time.Millisecond), time.Now())
			miss := tl.missing(after)
			r.lacks(name, len(miss), "serve restart: %s lacks %d of the %d messages sent after it recorded again", name, len(miss), len(after))
		}
		if at, ok := firstAfter(lines, up); ok {
			peerGap = at.Sub(up).Seconds()
		}
		for _, j := range s.joins {
			if !j.Before(up) {
				sendGap = j.Sub(up).Seconds()
				break
			}
		}
		labGaps, peerGaps, sendGaps = append(labGaps, labGap), append(peerGaps, peerGap), append(sendGaps, sendGap)
		// What the peer got that lablog did not: lost while lablog was
		// still reconnecting.
		var peerOnly int
		for n := range ptl.first {
			if _, ok := tl.first[n]; !ok {
				peerOnly++
			}
		}
		t.Logf("serve restart: %s back after: lablog %.2f s, peer %.2f s, sender %.2f s; peer-only messages %d", name, labGap, peerGap, sendGap, peerOnly)
		// The peer reads the relay directly; a host stream's messages
		// pass the relay host too.
		r.lacks(name, peerOnly, "serve restart: %s: the peer recorded %d messages lablog missed (lablog %d, peer %d)", name, peerOnly, len(tl.first), len(ptl.first))
	}
	t.Logf("serve restart: outage %v; sent %d, lablog %d (%.1f%%), peer %d (%.1f%%)", outage, sent, got, pct(got, sent), peerGot, pct(peerGot, sent))
	t.Logf("serve restart: time to record again after serve is back: lablog p50 %.2f s p95 %.2f s (direct %.2f, host %.2f); peer p50 %.2f s p95 %.2f s; senders p50 %.2f s",
		percentile(labGaps, 50), percentile(labGaps, 95), labGaps[:len(direct)], labGaps[len(direct):],
		percentile(peerGaps, 50), percentile(peerGaps, 95), percentile(sendGaps, 50))
	// Direct streams are lablog's own reconnects. Host streams come back
	// when the relay host's upstream does (its backoff doubles to 10 s, as
	// relay client file's does), so they are held to the peer's time.
	var misses []string
	if p95 := percentile(labGaps[:len(direct)], 95); p95 > recoveryTarget.Seconds() {
		misses = append(misses, fmt.Sprintf("serve restart: direct streams record again after p95 %.2f s, target %v", p95, recoveryTarget))
	}
	for i, name := range hosted {
		if g, p := labGaps[len(direct)+i], peerGaps[len(direct)+i]; g > p+1 {
			misses = append(misses, fmt.Sprintf("serve restart: host stream %s records again after %.2f s, the peer after %.2f s", name, g, p))
		}
	}
	for _, msg := range misses {
		t.Error(msg)
	}
}
