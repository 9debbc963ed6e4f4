package waitfor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAwaitWakesOnNotify(t *testing.T) {
	var mu sync.Mutex
	var sig Signal
	n := 0
	done := make(chan error, 1)
	go func() { done <- sig.Await(context.Background(), &mu, func() bool { return n >= 3 }) }()
	for range 3 {
		mu.Lock()
		n++
		sig.Notify()
		mu.Unlock()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAwaitEndsWithContext(t *testing.T) {
	var mu sync.Mutex
	var sig Signal
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sig.Await(ctx, &mu, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}
