package source

import (
	"strconv"
	"testing"
	"time"

	"github.com/practable/lablog/internal/testing/testkit"
)

func numbered(i int) received { return received{data: []byte(strconv.Itoa(i))} }

// TestHandoffKeepsOrderAndEveryFrame passes frames from one goroutine to
// another through bursts larger than the queue.
func TestHandoffKeepsOrderAndEveryFrame(t *testing.T) {
	q := newHandoffQueue(100)
	const n = 20000
	go func() {
		for i := range n {
			q.put(numbered(i))
		}
		q.close()
	}()
	batch := make([]received, 7)
	next := 0
	for {
		k := q.take(batch)
		if k == 0 {
			break
		}
		for _, f := range batch[:k] {
			if string(f.data) != strconv.Itoa(next) {
				t.Fatalf("frame %q, want %d", f.data, next)
			}
			next++
		}
	}
	if next != n {
		t.Fatalf("%d frames handed off, want %d", next, n)
	}
}

// TestHandoffBoundsFramesAhead checks the bound: waiting frames plus those
// taken and not yet handled never pass max, and the reader goes on as soon
// as the handler finishes a batch.
func TestHandoffBoundsFramesAhead(t *testing.T) {
	q := newHandoffQueue(10)
	for i := range 10 {
		q.put(numbered(i)) // room for all: no wait
	}
	batch := make([]received, 4)
	if k := q.take(batch); k != 4 {
		t.Fatalf("took %d, want 4", k)
	}
	// 6 wait and 4 are being handled: the next put must wait.
	put := make(chan struct{})
	go func() {
		q.put(numbered(10))
		close(put)
	}()
	testkit.Eventually(t, 5*time.Second, "put waiting for room", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.waits == 1
	})
	select {
	case <-put:
		t.Fatal("put went past the bound")
	default:
	}
	if k := q.take(batch); k != 4 || string(batch[0].data) != "4" {
		t.Fatalf("second take: %d frames from %q", k, batch[0].data)
	}
	<-put // the first batch is handled: room again
}

// TestHandoffDropsBurstMemory checks that a quiet stream does not keep the
// slice a burst grew.
func TestHandoffDropsBurstMemory(t *testing.T) {
	q := newHandoffQueue(handoff)
	for i := range handoff {
		q.put(numbered(i))
	}
	if c := cap(q.frames); c < handoff {
		t.Fatalf("burst held in %d slots", c)
	}
	batch := make([]received, takeMax)
	for taken := 0; taken < handoff; {
		taken += q.take(batch)
	}
	if c := cap(q.frames); c > keptFrames {
		t.Errorf("after the burst the queue keeps %d slots, want at most %d", c, keptFrames)
	}
	q.put(numbered(0))
	if k := q.take(batch); k != 1 {
		t.Errorf("took %d after the burst, want 1", k)
	}
	q.close()
	if k := q.take(batch); k != 0 {
		t.Errorf("take after close: %d", k)
	}
}
