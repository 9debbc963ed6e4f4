package analytics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Student is what the dashboards show of one graph: the matrix, how often
// each interaction happened (statements by verb, websocket commands by
// their payload.log) and when the student's sessions started.
type Student struct {
	Graph
	Usage    map[string]int64
	Sessions []time.Time // session-started statements' timestamps, in order
}

// Student reads k's graph as the store holds it now (Fresh first, for
// every record committed before). A graph the store does not have, or an
// experiment it has no nodes for, is an empty Student, not an error.
func (s *Store) Student(k Key) (Student, error) {
	e := Experiments[k.Exp]
	if e == nil {
		return Student{}, fmt.Errorf("analytics: no experiment %q", k.Exp)
	}
	st := Student{Graph: Graph{Key: k, Matrix: NewMatrix(e.Nodes)}, Usage: map[string]int64{}}
	err := s.side.View(storeBucket, func(b *bolt.Bucket) error {
		if b == nil || b.Bucket(graphsBucket) == nil {
			return nil
		}
		gb := b.Bucket(graphsBucket).Bucket(graphKey(k))
		if gb == nil {
			return nil
		}
		st.Graph = readGraph(gb, k, e)
		if u := gb.Bucket(usageBucket); u != nil {
			_ = u.ForEach(func(name, v []byte) error {
				if len(v) == 8 {
					st.Usage[string(name)] = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			})
		}
		if h := gb.Bucket(startsBucket); h != nil {
			_ = h.ForEach(func(sk, _ []byte) error {
				if len(sk) >= 8 {
					ms := int64(binary.BigEndian.Uint64(sk) ^ 1<<63)
					st.Sessions = append(st.Sessions, time.UnixMilli(ms))
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return Student{}, fmt.Errorf("analytics: %w", err)
	}
	return st, nil
}

// ErrBehind says the store does not hold every record yet: it is new, or
// was dropped after damage or a power cut, and is still counting the
// buffer or waiting to read the archive. Ask again shortly.
var ErrBehind = errors.New("the analytics store is still counting the records")

// freshBudget bounds the records one Fresh consumes, so a request never
// waits for a whole rebuild: beyond it, ErrBehind.
const freshBudget = 20 * batchMax

// Fresh consumes every record committed before it was called, so that
// what is read after it includes them, or returns ErrBehind. Callers
// that arrive while a catch-up runs share the next one rather than
// queueing one each.
func (s *Store) Fresh() error {
	want := s.freshAsked.Add(1)
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	if s.freshServed >= want {
		return nil // a catch-up that began after this call has ended
	}
	if seeded, err := s.Seeded(); err != nil {
		return err
	} else if !seeded {
		return ErrBehind // the archive is not counted yet
	}
	upTo := s.freshAsked.Load()
	_, all, err := s.catchUp(freshBudget)
	if err != nil {
		return err
	}
	if !all {
		return ErrBehind
	}
	s.freshServed = upTo
	return nil
}
