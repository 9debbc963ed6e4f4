package forward

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/forwardtest"
	"github.com/practable/lablog/internal/testing/testkit"
)

const user, password = "lablog", "up-pa55"

// rig is a real buffer with statements committed as /addLog commits them,
// an archive folder, and a forwarder of both to an upstream double.
type rig struct {
	db       *buffer.DB
	archive  string
	up       *forwardtest.Upstream
	want     map[string][]forwardtest.Sent
	n        int
	logs     *testkit.LogBuffer
	fw       *Forwarder
	stop     context.CancelFunc
	finished chan error
}

func newRig(t *testing.T, mode forwardtest.Mode) *rig {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &rig{
		db:      testkit.OpenBuffer(t, filepath.Join(dir, "buffer.db"), buffer.Options{}),
		archive: filepath.Join(dir, "archive"),
		up:      forwardtest.New(t, mode),
		want:    map[string][]forwardtest.Sent{},
		logs:    &testkit.LogBuffer{},
	}
}

// commit records n statements of each hardware at received, one commit
// per round as concurrent UIs would, keeping a client address that must
// not be forwarded.
func (r *rig) commit(t *testing.T, n int, received time.Time, hardware ...string) {
	t.Helper()
	for range n {
		var recs []frame.Record
		for _, hw := range hardware {
			r.n++
			q := url.Values{"username": {"u-1"}, "course": {"eng1"}, "hardware": {hw}}
			body := fmt.Sprintf(`{"verb":{"name":"clicked"},"n":%d,"odd":"caf\u00e9 \"q\" %%"}`, r.n)
			r.want[hw] = append(r.want[hw], forwardtest.Sent{Query: q.Encode(), Body: body})
			q.Set("client", "192.0.2.7")
			recs = append(recs, frame.Record{Stream: "addlog-" + hw, Received: received, Kind: frame.Statement,
				Data: frame.StatementData(q, []byte(body))})
		}
		if err := r.db.Append(recs); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *rig) start(t *testing.T, tune func(*Options)) {
	t.Helper()
	o := Options{URL: r.up.URL(), User: user, Password: password, Buffer: r.db,
		ArchiveRoot: r.archive, ArchiveRequire: archive.RequireNone, Prefix: "addlog-",
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Poll: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil))}
	if tune != nil {
		tune(&o)
	}
	fw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.fw, r.stop, r.finished = fw, cancel, make(chan error, 1)
	go func() { r.finished <- fw.Run(ctx) }()
	t.Cleanup(func() { r.halt(t) })
}

func (r *rig) halt(t *testing.T) {
	if r.stop == nil {
		return
	}
	r.stop()
	if err := <-r.finished; err != nil {
		t.Errorf("forwarder: %v", err)
	}
	r.stop = nil
}

// delivered waits until every committed statement arrived, then checks
// order, bytes and credentials, and returns the duplicates.
func (r *rig) delivered(t *testing.T, limit time.Duration) []forwardtest.Call {
	t.Helper()
	total := r.n
	testkit.Eventually(t, limit, "every statement upstream", func() bool {
		distinct := map[forwardtest.Sent]bool{}
		for _, c := range r.up.Calls() {
			distinct[forwardtest.Sent{Query: c.Query, Body: string(c.Body)}] = true
		}
		return len(distinct) >= total && r.fw.Stats().Pending == 0
	})
	calls := r.up.Calls()
	dups, err := forwardtest.Check(calls, r.want, hardwareOf)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.User != user || c.Pass != password || c.ContentType != "application/json" {
			t.Fatalf("call with credential %q:%q, content type %q", c.User, c.Pass, c.ContentType)
		}
	}
	return dups
}

func hardwareOf(c forwardtest.Call) string {
	q, _ := url.ParseQuery(c.Query)
	return q.Get("hardware")
}

// An upstream that refuses connections, then answers 500, then recovers
// gets every statement, in order per stream, byte for byte, none twice.
// The outage is 2 s rather than 20: the forwarder's behaviour (attempts at
// backoff intervals, nothing skipped) is the same after its first few.
func TestForwardThroughOutage(t *testing.T) {
	r := newRig(t, forwardtest.Down)
	r.commit(t, 30, time.Now(), "spinner", "pendulum")
	r.start(t, nil)
	testkit.Eventually(t, 5*time.Second, "a refused attempt", func() bool { return r.fw.Stats().Failures >= 2 })
	r.commit(t, 20, time.Now(), "spinner", "truss")
	time.Sleep(2 * time.Second) // the outage itself: nothing to wait for but time
	r.up.Set(forwardtest.Failing)
	testkit.Eventually(t, 5*time.Second, "attempts answered 500", func() bool { return r.up.Attempts() >= 3 })
	if got := len(r.up.Calls()); got != 0 {
		t.Fatalf("%d calls accepted while failing", got)
	}
	st := r.fw.Stats()
	if st.Pending != int64(r.n) || st.LastError == "" || st.Oldest == nil {
		t.Errorf("during the outage: %+v, want %d pending, an error and the oldest's time", st, r.n)
	}
	r.up.Set(forwardtest.Up)
	r.commit(t, 10, time.Now(), "pendulum")
	if dups := r.delivered(t, 20*time.Second); len(dups) > 0 {
		t.Errorf("%d duplicates without a crash", len(dups))
	}
	t.Logf("%d statements forwarded; %d failed attempts", r.n, r.fw.Stats().Failures)
}

// Against an upstream that answers 500 to everything, attempts are spaced
// by the backoff (at least MinBackoff apart), never a hot loop.
func TestForwardBacksOff(t *testing.T) {
	r := newRig(t, forwardtest.Failing)
	r.commit(t, 5, time.Now(), "spinner")
	r.start(t, func(o *Options) { o.MinBackoff, o.MaxBackoff = 100*time.Millisecond, 400*time.Millisecond })
	const window = 3 * time.Second
	begin := r.up.Attempts()
	start := time.Now()
	testkit.Eventually(t, 2*window, "the window to pass", func() bool { return time.Since(start) >= window })
	n := r.up.Attempts() - begin
	rate := float64(n) / time.Since(start).Seconds()
	t.Logf("%d attempts in %v: %.1f attempts/s", n, window, rate)
	if n < 3 || rate > 1/0.1+1 {
		t.Errorf("%d attempts in %v (%.1f/s): want a few, at most one per min_backoff", n, window, rate)
	}
}

// Statements the compactor moved to the archive while the upstream was
// down are read back from the Parquet files and forwarded, in order.
func TestForwardFromArchiveAfterCompaction(t *testing.T) {
	r := newRig(t, forwardtest.Down)
	old := time.Now().Add(-3 * time.Hour)
	r.commit(t, 40, old, "spinner", "pendulum")
	r.start(t, nil)
	testkit.Eventually(t, 5*time.Second, "a refused attempt", func() bool { return r.fw.Stats().Failures >= 1 })
	r.commit(t, 5, time.Now(), "spinner") // the open hour stays in the buffer
	c := compactor.New(r.db, compactor.Options{Root: r.archive, Require: archive.RequireNone})
	if res := c.RunOnce(context.Background()); res.Err != nil || res.Files != 2 {
		t.Fatalf("compaction: %+v", res)
	}
	groups, err := r.db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Hour.Before(frame.Hour(time.Now())) {
			t.Fatalf("the buffer still holds %v", g)
		}
	}
	r.up.Set(forwardtest.Up)
	if dups := r.delivered(t, 20*time.Second); len(dups) > 0 {
		t.Errorf("%d duplicates", len(dups))
	}
	if st := r.fw.Stats(); st.FromArchive != 80 || st.Skipped != 0 {
		t.Errorf("%d from the archive, %d skipped: want 80 and 0", st.FromArchive, st.Skipped)
	}
}

// The marks are kept in the buffer: a forwarder started again on it goes
// on from where the last one stopped, sending nothing twice after a clean
// stop.
func TestForwardResumesFromMark(t *testing.T) {
	r := newRig(t, forwardtest.Up)
	r.commit(t, 25, time.Now(), "spinner")
	r.start(t, nil)
	r.delivered(t, 10*time.Second)
	r.halt(t)
	r.commit(t, 25, time.Now(), "spinner")
	r.start(t, nil)
	if dups := r.delivered(t, 10*time.Second); len(dups) > 0 {
		t.Errorf("%d statements sent again after a clean stop", len(dups))
	}
}

// A statement whose records are gone from the buffer while the archive is
// missing is waited for, not skipped.
func TestForwardWaitsForMissingArchive(t *testing.T) {
	r := newRig(t, forwardtest.Down)
	r.commit(t, 3, time.Now().Add(-3*time.Hour), "spinner")
	c := compactor.New(r.db, compactor.Options{Root: r.archive, Require: archive.RequireNone})
	if res := c.RunOnce(context.Background()); res.Err != nil || res.Files != 1 {
		t.Fatalf("compaction: %+v", res)
	}
	moved := r.archive + ".unplugged"
	if err := os.Rename(r.archive, moved); err != nil {
		t.Fatal(err)
	}
	r.up.Set(forwardtest.Up)
	r.start(t, nil)
	testkit.Eventually(t, 5*time.Second, "the missing archive reported", func() bool {
		return strings.Contains(r.fw.Stats().LastError, "neither the buffer nor the archive")
	})
	if st := r.fw.Stats(); st.Skipped != 0 || st.Forwarded != 0 {
		t.Fatalf("with the archive unplugged: %+v", st)
	}
	if err := os.Rename(moved, r.archive); err != nil {
		t.Fatal(err)
	}
	r.delivered(t, 10*time.Second)
}

// A long backlog in one archive file is read from the file once per
// window of statements, not once per batch.
func TestForwardReadsArchiveFileOncePerWindow(t *testing.T) {
	r := newRig(t, forwardtest.Up)
	r.commit(t, 1000, time.Now().Add(-3*time.Hour), "spinner")
	c := compactor.New(r.db, compactor.Options{Root: r.archive, Require: archive.RequireNone})
	if res := c.RunOnce(context.Background()); res.Err != nil || res.Files != 1 {
		t.Fatalf("compaction: %+v", res)
	}
	r.start(t, nil)
	r.delivered(t, 30*time.Second)
	if n := r.fw.archiveReads.Load(); n > 1 {
		t.Errorf("the archive file was read %d times for 1000 statements: want once", n)
	}
}
