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

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) || !Sleep(context.Background(), 0) {
		t.Fatal("a sleep with a live context said stop")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || Sleep(ctx, 0) {
		t.Fatal("a sleep with an ended context said go on")
	}
	if time.Since(start) > time.Second {
		t.Fatal("an ended context did not cut the sleep short")
	}
}

func TestSleepUnless(t *testing.T) {
	wake := make(chan struct{})
	if goOn, woken := SleepUnless(context.Background(), time.Millisecond, wake); !goOn || woken {
		t.Fatalf("timer first: goOn %v, woken %v; want true, false", goOn, woken)
	}
	close(wake)
	start := time.Now()
	if goOn, woken := SleepUnless(context.Background(), time.Hour, wake); !goOn || !woken {
		t.Fatalf("woken: goOn %v, woken %v; want true, true", goOn, woken)
	}
	if time.Since(start) > time.Second {
		t.Fatal("a closed wake did not cut the sleep short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if goOn, woken := SleepUnless(ctx, time.Hour, nil); goOn || woken {
		t.Fatalf("ended context: goOn %v, woken %v; want false, false", goOn, woken)
	}
	if err := SleepErr(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("SleepErr with an ended context: %v, want context.Canceled", err)
	}
	if err := SleepErr(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("SleepErr: %v", err)
	}
}
