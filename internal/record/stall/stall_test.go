package stall

import (
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/buffer"
)

func TestDetector(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type obs struct {
		sec     int
		st      buffer.WriterStats
		stalled bool
		reason  string
	}
	for _, tc := range []struct {
		name string
		obs  []obs
	}{
		{"a full buffer refusing frames is not a stall", []obs{
			{0, buffer.WriterStats{Commits: 5}, false, ""},
			{100, buffer.WriterStats{Commits: 5, Full: true, LastError: "buffer commit: database reached maximum size"}, false, ""},
		}},
		{"idle writer is never stalled", []obs{
			{0, buffer.WriterStats{}, false, ""},
			{100, buffer.WriterStats{}, false, ""},
			{1000, buffer.WriterStats{}, false, ""},
		}},
		{"busy writer that commits is healthy", []obs{
			{0, buffer.WriterStats{Queued: 50, Commits: 1}, false, ""},
			{15, buffer.WriterStats{Queued: 80, Commits: 2}, false, ""},
			{30, buffer.WriterStats{Queued: 10, Commits: 3}, false, ""},
			{45, buffer.WriterStats{Queued: 90, Commits: 4}, false, ""},
		}},
		{"queue not draining", []obs{
			{0, buffer.WriterStats{Commits: 7}, false, ""},
			{5, buffer.WriterStats{Queued: 3, Commits: 7}, false, ""},
			{20, buffer.WriterStats{Queued: 300, Commits: 7}, false, ""}, // exactly After: not yet
			{21, buffer.WriterStats{Queued: 310, Commits: 7}, true, "310 records queued and nothing committed for 21s"},
			{22, buffer.WriterStats{Queued: 0, Commits: 8}, false, ""}, // recovers at once
		}},
		{"commits failing with nothing queued", []obs{
			{0, buffer.WriterStats{Commits: 2}, false, ""},
			{1, buffer.WriterStats{Commits: 2, LastError: "buffer commit: database full"}, false, ""},
			{30, buffer.WriterStats{Commits: 2, LastError: "buffer commit: database full"}, true, "commits failing for 30s: buffer commit: database full"},
		}},
		{"a failure that clears is forgotten", []obs{
			{0, buffer.WriterStats{Commits: 2, Queued: 1, LastError: "x"}, false, ""},
			{10, buffer.WriterStats{Commits: 3}, false, ""},
			{25, buffer.WriterStats{Commits: 3, Queued: 4}, false, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Detector{After: 20 * time.Second}
			for _, o := range tc.obs {
				stalled, reason := d.Observe(at(o.sec), o.st)
				if stalled != o.stalled || !strings.HasSuffix(reason, o.reason) {
					t.Errorf("t=%ds %+v: got (%v, %q), want (%v, ...%q)", o.sec, o.st, stalled, reason, o.stalled, o.reason)
				}
			}
		})
	}
}

func TestReasonUnderOneSecond(t *testing.T) {
	d := Detector{After: 100 * time.Millisecond}
	t0 := time.Now()
	d.Observe(t0, buffer.WriterStats{Queued: 1})
	_, why := d.Observe(t0.Add(250*time.Millisecond), buffer.WriterStats{Queued: 1})
	if why != "writer: 1 records queued and nothing committed for 250ms" {
		t.Errorf("reason %q", why)
	}
}

func TestDefaultAfter(t *testing.T) {
	var d Detector
	t0 := time.Now()
	d.Observe(t0, buffer.WriterStats{Queued: 1})
	if s, _ := d.Observe(t0.Add(DefaultAfter), buffer.WriterStats{Queued: 1}); s {
		t.Error("stalled at DefaultAfter, want only after it")
	}
	if s, _ := d.Observe(t0.Add(DefaultAfter+time.Second), buffer.WriterStats{Queued: 1}); !s {
		t.Error("not stalled past DefaultAfter")
	}
}
