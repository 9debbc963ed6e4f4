package relay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/testing/testkit"
)

// TestTokenExpiryAndRenewal: lablog's read tokens live 12 s. spin70's
// file is renewed before it expires, spin71's only once lablog has stopped
// the stream for an expired token. Both record again without a restart.
func TestTokenExpiryAndRenewal(t *testing.T) {
	t.Parallel()
	const life = 12 * time.Second
	r := newRig(t, life, "spin70", "spin71")
	cl, err := relay.ParseUnverified(token(t, r.readTk, "spin70"))
	if err != nil {
		t.Fatal(err)
	}
	exp := cl.ExpiresAt
	r.lablog = startLablog(t, r.readTk, fmt.Sprintf("{name: spin70-71, relay: %s}", r.serve.Base()))
	warmUp(t, r.list(), 30*time.Second, r.connected)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := steady(ctx, r.list(), 20)

	r.serve.tokens(r.readTk, time.Hour, false, "spin70")
	renewed70 := time.Now()
	if !renewed70.Before(exp.Add(-2 * time.Second)) {
		t.Fatalf("set-up too slow: spin70 renewed at %v, its old token expires at %v", renewed70, exp)
	}

	// spin71 stops once its token expires (the relay ends the connection,
	// or lablog does at the expiry).
	var stopped71 time.Time
	if !testkit.PollEvery(life+20*time.Second, pollEvery, func() bool {
		st, err := r.lablog.streams()
		if err == nil && time.Now().After(exp) && !st["spin71"].Connected {
			stopped71 = time.Now()
			return true
		}
		return false
	}) {
		t.Fatalf("spin71 still connected 20 s after its token expired")
	}
	st, _ := r.lablog.streams()
	t.Logf("token: spin71 stopped %.2f s after its token expired: state %q, last_error %q",
		stopped71.Sub(exp).Seconds(), st["spin71"].State, st["spin71"].LastError)
	r.serve.tokens(r.readTk, time.Hour, false, "spin71")
	renewed71 := time.Now()

	back := map[string]time.Time{}
	testkit.PollEvery(40*time.Second, pollEvery, func() bool {
		st, err := r.lablog.streams()
		if err != nil {
			return false
		}
		if s := st["spin70"]; back["spin70"].IsZero() && s.Connected && s.LastMessageAt != nil && s.LastMessageAt.After(exp.Add(time.Second)) {
			back["spin70"] = *s.LastMessageAt
		}
		if s := st["spin71"]; back["spin71"].IsZero() && s.LastMessageAt != nil && s.LastMessageAt.After(renewed71) {
			back["spin71"] = *s.LastMessageAt
		}
		return len(back) == 2
	})
	time.Sleep(time.Second) // traffic once both are back
	cancel()
	wg.Wait()
	r.settle(20 * time.Second)
	recs := r.lablog.records()
	r.result("token", recs, false)

	// spin70: the old token's connection ends at its expiry; the longest
	// silence around it is the renewal's cost.
	tl70 := count(recs["spin70"])
	gap, gapAt := longestGap(tl70, r.senders["spin70"])
	if gap == 0 {
		t.Logf("token: spin70 (renewed %.1f s before expiry): no message missing across the expiry", exp.Sub(renewed70).Seconds())
	} else {
		t.Logf("token: spin70 (renewed %.1f s before expiry): longest run of missing messages %d, from %.2f s after expiry",
			exp.Sub(renewed70).Seconds(), gap, gapAt.Sub(exp).Seconds())
	}
	if back["spin70"].IsZero() {
		t.Errorf("token: spin70 did not record again within 40 s of its old token's expiry")
	}
	if at, ok := back["spin71"]; !ok {
		t.Errorf("token: spin71 did not record again within 40 s of its token file's renewal")
	} else {
		t.Logf("token: spin71 records again %.2f s after its token file was renewed", at.Sub(renewed71).Seconds())
		// docs/relay.md: a stopped stream reads its token file again at least every 10 s.
		if d := at.Sub(renewed71); d > 15*time.Second {
			t.Errorf("token: spin71 took %v after renewal to record again, want within 10 s (plus a dial)", d)
		}
	}
	// Nothing may be missing before the expiry or once a stream is back.
	for name, tl := range map[string]tally{"spin70": tl70, "spin71": count(recs["spin71"])} {
		s := r.senders[name]
		if miss := tl.missing(s.sentBetween(time.Time{}, exp.Add(-500*time.Millisecond))); len(miss) > 0 {
			t.Errorf("token: %s lacks %d messages sent before the expiry", name, len(miss))
		}
		if at, ok := firstAfter(recs[name], exp.Add(time.Second)); ok {
			if miss := tl.missing(s.sentBetween(at.Add(200*time.Millisecond), time.Now())); len(miss) > 0 {
				t.Errorf("token: %s lacks %d messages sent after it recorded again", name, len(miss))
			}
		}
	}
}

// longestGap finds the longest run of numbers s sent that tl lacks, and
// when its first message was sent.
func longestGap(tl tally, s *sender) (int, time.Time) {
	n, _ := s.sent()
	best, run := 0, 0
	var bestAt time.Time
	for i := range n {
		if _, ok := tl.first[i]; ok {
			run = 0
			continue
		}
		run++
		if run > best {
			best = run
			s.mu.Lock()
			bestAt = s.sentAt[i-run+1]
			s.mu.Unlock()
		}
	}
	return best, bestAt
}
