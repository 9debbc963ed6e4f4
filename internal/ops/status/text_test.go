package status

import (
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/source"
)

// Each stream's problem says what is true now: a stream never connected is
// connecting (with why it takes long), an expired token gives its date,
// time and how long ago, and a connected stream has no problem whatever
// happened before.
func TestStreamProblemTexts(t *testing.T) {
	now := t0
	exp := now.Add(-3*time.Hour - 12*time.Minute)
	soon := now.Add(2*time.Hour + 5*time.Minute)
	for _, tc := range []struct {
		name string
		src  source.Stats
		want string // "" for no problem
	}{
		{"never connected, dials refused", source.Stats{Since: now.Add(-20 * time.Second), LastError: "dial: connection refused"},
			"s: connecting for 20s: dial: connection refused"},
		{"never connected, first dial pending", source.Stats{Since: now}, "s: connecting"},
		{"lost", source.Stats{Since: now.Add(-80 * time.Second), Connects: 1, LastError: "read: EOF"},
			"s: reconnecting for 1m 20s: read: EOF"},
		{"back after an outage", source.Stats{Connected: true, Since: now, Connects: 2}, ""},
		{"token expired", source.Stats{Since: exp, Connects: 1, TokenState: source.TokenExpired, TokenExpiry: exp,
			State: source.TokenExpiredState(exp), LastError: source.TokenExpiredState(exp)},
			"s: relay token expired at 2026-11-26 10:48:00 UTC (3h 12m ago)"},
		{"token expiring", source.Stats{Connected: true, Connects: 1, TokenState: source.TokenExpiring, TokenExpiry: soon},
			"s: relay token expires at 2026-11-26 16:05:00 UTC (in 2h 5m)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.Stream = "s"
			f := &fakePipeline{sources: []source.Stats{tc.src}}
			m := New(f, Options{ArchiveRoot: t.TempDir(), Now: func() time.Time { return now },
				ClockSynced: func() bool { return true }, Logger: quiet()})
			got := ""
			for _, p := range m.Snapshot().Problems {
				if len(p.Message) > 2 && p.Message[:2] == "s:" {
					got = p.Message
				}
			}
			if got != tc.want {
				t.Fatalf("problem %q, want %q", got, tc.want)
			}
		})
	}
}
