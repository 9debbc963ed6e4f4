package labsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/frame"
)

// counter reads the "n" a Lab puts in every payload.
func counter(t *testing.T, m frame.Message) int64 {
	t.Helper()
	i := bytes.LastIndex(m.Payload, []byte(`"n"`))
	if i < 0 {
		t.Fatalf("no counter in %s", m.Raw)
	}
	rest := bytes.TrimLeft(m.Payload[i+3:], ": ")
	end := bytes.IndexAny(rest, ",}")
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil {
		t.Fatalf("counter in %s: %v", m.Raw, err)
	}
	return n
}

func TestLabRunNIsExactAndRealistic(t *testing.T) {
	h := newHost(t)
	streams := []string{"spin30", "spin31", "pend00"}
	clients := dialStreams(t, h, streams)
	lab := NewLab(h, LabOptions{Streams: streams, JoinProb: 0.3, Seed: 1})
	const n = 400
	if err := lab.RunN(ctx(t), n); err != nil {
		t.Fatal(err)
	}

	var glued, nan, legacy, dashboard, large int
	types := map[string]int{}
	for _, s := range streams {
		if lab.Sent(s) != n {
			t.Fatalf("%s: Sent %d, want %d", s, lab.Sent(s), n)
		}
		d := h.Delivered(s)
		if int64(len(d)) != lab.Frames(s) {
			t.Fatalf("%s: %d frames delivered, %d published", s, len(d), lab.Frames(s))
		}
		read := clients[s].read(t, len(d))
		next := int64(1)
		for i, f := range d {
			if !bytes.Equal(read[i].data, f) {
				t.Fatalf("%s frame %d: read differs from delivered", s, i)
			}
			msgs := frame.Split(f)
			if len(msgs) > 1 {
				glued++
			}
			for _, m := range msgs {
				if m.Err != "" {
					t.Fatalf("%s: %s in %s", s, m.Err, m.Raw)
				}
				if got := counter(t, m); got != next {
					t.Fatalf("%s: counter %d, want %d (gap or duplicate)", s, got, next)
				}
				next++
				raw := bytes.TrimSpace(m.Raw)
				switch {
				case bytes.Contains(raw, []byte("NaN")):
					nan++
				case !json.Valid(raw):
					t.Fatalf("invalid JSON without NaN: %s", raw)
				}
				if m.Type == nil && m.Exp == nil && m.User != nil && m.T != nil {
					legacy++
				} else {
					types[*m.Type]++
					if *m.Exp != map[bool]string{true: "pendulum", false: "spinner"}[s == "pend00"] || *m.Course == "" {
						t.Fatalf("%s: exp/course in %s", s, raw)
					}
				}
				if m.Type != nil && *m.Type == "request" && m.Hardware == nil {
					dashboard++
				}
				if m.Hardware != nil && *m.Hardware != s {
					t.Fatalf("%s: hardware %q", s, *m.Hardware)
				}
				if len(raw) > 1500 {
					large++
				}
			}
		}
		if next != n+1 {
			t.Fatalf("%s: %d messages split out, want %d", s, next-1, n)
		}
	}
	t.Logf("glued frames %d, NaN %d, legacy %d, dashboard %d, large %d, types %v", glued, nan, legacy, dashboard, large, types)
	for what, count := range map[string]int{"glued frames": glued, "NaN responses": nan, "legacy messages": legacy,
		"dashboard requests": dashboard, "achievement logs": large, "log": types["log"], "analytics": types["analytics"],
		"feedback": types["feedback"], "response": types["response"]} {
		if count == 0 {
			t.Errorf("no %s in %d messages", what, n*len(streams))
		}
	}
}

func TestLabIsReproducible(t *testing.T) {
	run := func() [][]byte {
		h := newHost(t)
		dialStreams(t, h, []string{"spin40"})
		clock := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
		lab := NewLab(h, LabOptions{Streams: []string{"spin40"}, JoinProb: 0.5, BadFrames: true, Seed: 42,
			Now: func() time.Time { return clock }})
		if err := lab.RunN(ctx(t), 300); err != nil {
			t.Fatal(err)
		}
		return h.Delivered("spin40")
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("%d frames, then %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("frame %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
}

func TestLabBadFramesAreBad(t *testing.T) {
	g := newGen("spin30", 1)
	g.message(time.Now()) // start a session
	for k := range numBadKinds {
		data, binary := g.badFrame(k)
		if binary {
			if k != badBinary {
				t.Errorf("kind %d is binary", k)
			}
			continue
		}
		msgs := frame.Split(data)
		if msgs[len(msgs)-1].Err == "" {
			t.Errorf("kind %d splits cleanly: %.60q", k, data)
		}
	}
	seen := map[badKind]bool{}
	for range 5000 {
		seen[g.pickBad()] = true
	}
	if len(seen) != int(numBadKinds) {
		t.Fatalf("pickBad chose %d of %d kinds", len(seen), numBadKinds)
	}
}

func TestLabRunNWithBadFramesIsStillExact(t *testing.T) {
	h := newHost(t)
	dialStreams(t, h, []string{"spin41"})
	lab := NewLab(h, LabOptions{Streams: []string{"spin41"}, JoinProb: 0.2, BadFrames: true, Seed: 7})
	const n = 2000
	if err := lab.RunN(ctx(t), n); err != nil {
		t.Fatal(err)
	}
	if err := lab.RunN(ctx(t), 10); err != nil { // continues the counter
		t.Fatal(err)
	}
	var good, bad int
	next := int64(1)
	for _, f := range h.Delivered("spin41") {
		msgs := frame.Split(f)
		if msgs[len(msgs)-1].Err != "" {
			bad++
			continue
		}
		for _, m := range msgs {
			if got := counter(t, m); got != next {
				t.Fatalf("counter %d, want %d", got, next)
			}
			next++
			good++
		}
	}
	if good != n+10 || lab.Sent("spin41") != n+10 || bad == 0 {
		t.Fatalf("good %d, sent %d, bad %d", good, lab.Sent("spin41"), bad)
	}
	t.Logf("%d bad frames among %d frames", bad, lab.Frames("spin41"))
}

func TestLabRunPacedUntilCancel(t *testing.T) {
	h := newHost(t)
	streams := []string{"spin30", "pend01"}
	clients := dialStreams(t, h, streams)
	lab := NewLab(h, LabOptions{Streams: streams, Rate: 200, JoinProb: 0.2, Seed: 3})
	c, cancel := ctxCancel(t)
	done := make(chan error, 1)
	go func() { done <- lab.Run(c) }()
	for _, s := range streams {
		clients[s].read(t, 10)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop within 2s of cancel")
	}
}

// TestLabScale runs the demo's load (80 streams at 5 msg/s) briefly and
// checks the lab keeps up.
func TestLabScale(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	h := newHost(t)
	var streams []string
	for i := range 40 {
		streams = append(streams, fmt.Sprintf("spin%02d", 30+i), fmt.Sprintf("pend%02d", i))
	}
	clients := dialStreams(t, h, streams)
	lab := NewLab(h, LabOptions{Streams: streams, Rate: 5, JoinProb: 0.1, BadFrames: true, Seed: 9})
	c, cancel := ctxCancel(t)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- lab.Run(c) }()
	timer := time.NewTimer(3 * time.Second)
	defer timer.Stop()
	<-timer.C
	cancel()
	<-done
	elapsed := time.Since(start).Seconds()
	var total int64
	for _, s := range streams {
		total += lab.Sent(s)
	}
	rate := float64(total) / elapsed / float64(len(streams))
	t.Logf("%d messages in %.1fs: %.2f msg/s per stream", total, elapsed, rate)
	if rate < 2 || rate > 10 {
		t.Fatalf("rate %.2f msg/s per stream, want about 5", rate)
	}
	_ = clients
}

func BenchmarkMessage(b *testing.B) {
	g := newGen("spin30", 1)
	now := time.Now()
	var size int
	for b.Loop() {
		size += len(g.message(now))
	}
	b.ReportMetric(float64(size)/float64(b.N), "bytes/msg")
}
