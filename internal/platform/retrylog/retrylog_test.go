package retrylog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A run of failures: the first at Level, the rest at Debug until Every has
// passed, then one line with the counts, and one when the run ends.
func TestRunLogsFirstThenEveryThenEnd(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := Run{Level: slog.LevelError}
	t0 := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	err := errors.New("boom")
	for i := range 30 { // one a second: 30 s
		r.Failed(context.Background(), log, t0.Add(time.Duration(i)*time.Second), "first", "still", err)
	}
	r.Failed(context.Background(), log, t0.Add(Every), "first", "still", err)
	r.Ended(log, t0.Add(Every+time.Second), "ended")
	got := buf.String()
	for _, want := range []string{
		"level=ERROR msg=first err=boom",
		"level=ERROR msg=still failures=31 since_last_line=30 for=1m0s err=boom",
		"level=INFO msg=ended failures=31 for=1m1s",
	} {
		if strings.Count(got, want) != 1 {
			t.Errorf("want one %q in:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "level=DEBUG"); n != 29 {
		t.Errorf("%d debug lines, want 29", n)
	}
	if r.Failures() != 0 || r.Level != slog.LevelError {
		t.Errorf("after Ended: %d failures, level %v; want 0 and the level kept", r.Failures(), r.Level)
	}
}
