package source

import "sync"

// takeMax is how many frames the handling goroutine takes at a time, at
// most: its slice grows to that many under load, and the read loop goes
// on adding while it works through them.
const takeMax = 64

// keptFrames is the largest queue kept once empty: a slice grown by a
// burst is dropped, so a quiet stream holds a few KiB, not its peak.
const keptFrames = 64

// handoffQueue carries frames from the read loop to their handling, at
// most max ahead of it (waiting plus taken but not yet handled), as a
// channel of that size did. A channel's ring is allocated whole and its
// slots are written in turn, so every stream kept 64 KiB resident (1024
// frames of 64 bytes) however quiet it was; this queue's memory follows
// what waits.
type handoffQueue struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	frames   []received // frames[head:] wait
	head     int
	held     int // taken by the handler, not yet handled
	max      int
	closed   bool
	waits    int // times put waited for room, for the tests
}

func newHandoffQueue(max int) *handoffQueue {
	q := &handoffQueue{max: max}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// put adds f, waiting while max frames are ahead of their handling.
func (q *handoffQueue) put(f received) {
	q.mu.Lock()
	for len(q.frames)-q.head+q.held >= q.max {
		q.waits++
		q.notFull.Wait()
	}
	if q.head > 0 && len(q.frames) == cap(q.frames) {
		// Reuse the handled front before growing.
		n := copy(q.frames, q.frames[q.head:])
		clear(q.frames[n:])
		q.frames = q.frames[:n]
		q.head = 0
	}
	q.frames = append(q.frames, f)
	q.notEmpty.Signal()
	q.mu.Unlock()
}

// take marks the frames of the previous take handled, waits for frames and
// moves up to len(into) of them into into. It returns 0 once the queue is
// closed and empty.
func (q *handoffQueue) take(into []received) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.held = 0
	q.notFull.Signal()
	for len(q.frames) == q.head && !q.closed {
		q.notEmpty.Wait()
	}
	n := copy(into, q.frames[q.head:])
	clear(q.frames[q.head : q.head+n]) // the handler's copy owns the data now
	q.head += n
	if q.head == len(q.frames) {
		q.head = 0
		q.frames = q.frames[:0]
		if cap(q.frames) > keptFrames {
			q.frames = nil
		}
	}
	q.held = n
	return n
}

// close ends the queue: take returns what still waits, then 0.
func (q *handoffQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.notEmpty.Broadcast()
	q.mu.Unlock()
}
