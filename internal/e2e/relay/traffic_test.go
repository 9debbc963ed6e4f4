package relay

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/practable/lablog/internal/ops/relay"
)

// sender is a lab UI: it joins a stream's topic through the access
// protocol (lablog's own client) with a write token and sends numbered
// messages. Warm-up messages carry n = -1 and are not counted.
type sender struct {
	stream, access, token string

	mu       sync.Mutex
	conn     *websocket.Conn
	next     int               // the next message number
	sentAt   map[int]time.Time // when each counted message was written
	joins    []time.Time       // when each connection was made
	lastSent time.Time
}

func newSender(s *relayServe, stream, token string) *sender {
	return &sender{stream: stream, access: s.AccessURL(stream), token: token, sentAt: map[int]time.Time{}}
}

func (s *sender) join(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	uri, err := relay.Access(ctx, nil, s.access, s.token)
	if err != nil {
		return fmt.Errorf("sender %s: %w", s.stream, err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, uri, nil)
	if err != nil {
		return fmt.Errorf("sender %s: dial: %w", s.stream, err)
	}
	s.conn = conn
	s.joins = append(s.joins, time.Now())
	go func() { // nothing comes but control frames; reading answers pings
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return nil
}

// send writes one message, joining first if need be; false when the relay
// is not there. A failed message keeps its number for the next try, so the
// numbers sent are 0..next-1 without gaps.
func (s *sender) send(ctx context.Context, warm bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if err := s.join(ctx); err != nil {
			return false
		}
	}
	n := s.next
	if warm {
		n = -1
	}
	now := time.Now()
	msg := fmt.Sprintf(`{"user":"relayconf","t":%d,"type":"log","course":"conformance","payload":{"s":%q,"n":%d}}`,
		now.UnixMilli(), s.stream, n)
	_ = s.conn.SetWriteDeadline(now.Add(2 * time.Second))
	if err := s.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		s.conn.Close()
		s.conn = nil
		return false
	}
	s.lastSent = time.Now()
	if !warm {
		s.sentAt[n] = now
		s.next++
	}
	return true
}

func (s *sender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// sent returns the numbers sent so far and when the last message went.
func (s *sender) sent() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next, s.lastSent
}

// sentBetween counts the messages written in [from, to).
func (s *sender) sentBetween(from, to time.Time) map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]bool{}
	for n, at := range s.sentAt {
		if !at.Before(from) && at.Before(to) {
			m[n] = true
		}
	}
	return m
}

// steady sends rate messages a second on every sender until ctx ends.
func steady(ctx context.Context, senders []*sender, rate int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					s.send(ctx, false)
				}
			}
		}()
	}
	return &wg
}

// warmUp sends uncounted messages every 100 ms until ready holds: until
// every recorder is connected end to end.
func warmUp(t *testing.T, senders []*sender, limit time.Duration, ready func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		for _, s := range senders {
			s.send(ctx, true)
		}
		if ready() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("recorders not connected within %v", limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

var numberRE = regexp.MustCompile(`"n":(-?\d+)`)

// tally is what one recorder got of one stream's counted messages.
type tally struct {
	first map[int]time.Time // message number -> when first recorded
	dups  int               // messages recorded more than once
}

func count(frames []received) tally {
	tl := tally{first: map[int]time.Time{}}
	for _, f := range frames {
		for _, m := range numberRE.FindAllSubmatch(f.data, -1) {
			n, err := strconv.Atoi(string(m[1]))
			if err != nil || n < 0 {
				continue
			}
			if _, ok := tl.first[n]; ok {
				tl.dups++
				continue
			}
			tl.first[n] = f.at
		}
	}
	return tl
}

// firstAfter is the first time a frame was recorded at or after t.
func firstAfter(frames []received, t time.Time) (time.Time, bool) {
	var best time.Time
	for _, f := range frames {
		if !f.at.Before(t) && (best.IsZero() || f.at.Before(best)) {
			best = f.at
		}
	}
	return best, !best.IsZero()
}

// missing lists the numbers of want that tl lacks.
func (tl tally) missing(want map[int]bool) []int {
	var out []int
	for n := range want {
		if _, ok := tl.first[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// upTo is the set 0..n-1.
func upTo(n int) map[int]bool {
	m := make(map[int]bool, n)
	for i := range n {
		m[i] = true
	}
	return m
}

// percentile is the nearest-rank p-th percentile of ds; +Inf stands for a
// stream that never came back.
func percentile(ds []float64, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func pct(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
