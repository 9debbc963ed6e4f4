package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/testkit"
)

// daemon is `lablog run` in-process against a simulated relay host.
type daemon struct {
	host    *labsim.Host
	url     string // status server
	archive string
	logs    *testkit.LogBuffer
	cancel  context.CancelFunc
	done    chan error

	stopOnce sync.Once
	stopErr  error
}

var statusURL = regexp.MustCompile(`msg="status page" url=(http://\S+)`)

// runInProcess writes a config for names (plus extra buffer keys and YAML
// sections) and runs
// `lablog run` until the test ends. The archive uses require: marker.
func runInProcess(t *testing.T, names []string, bufferKeys, extra string) *daemon {
	t.Helper()
	return runInProcessIn(t, t.TempDir(), names, bufferKeys, extra)
}

// runInProcessIn is runInProcess with the buffer (buffer.db) and the
// archive in dir, which the test may have prepared.
func runInProcessIn(t *testing.T, dir string, names []string, bufferKeys, extra string) *daemon {
	t.Helper()
	host := newTestHost(t)
	d := &daemon{host: host, archive: filepath.Join(dir, "archive"), logs: &testkit.LogBuffer{}, done: make(chan error, 1)}
	if err := os.MkdirAll(d.archive, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.archive, archive.MarkerFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("buffer: {path: %s%s}\narchive: {path: %s, require: marker}\n"+
		"sources: {min_backoff: 50ms, max_backoff: 200ms}\nstatus: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n%s\nstreams:\n",
		filepath.Join(dir, "buffer.db"), bufferKeys, d.archive, extra)
	for _, n := range names {
		cfg += fmt.Sprintf("  - {name: %s, relay_host: %s}\n", n, host.URL())
	}
	cfgPath := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { d.done <- run(ctx, []string{"run", "--config", cfgPath}, io.Discard, d.logs) }()
	t.Cleanup(func() { d.stop(t) })
	testkit.Eventually(t, 10*time.Second, "the status page's address in the log", func() bool {
		m := statusURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			d.url = m[1]
		}
		return m != nil
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	for _, n := range names {
		if err := host.WaitClients(wctx, n, 1); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// shutdown ends the daemon, once, and returns how it exited; it is safe
// from any goroutine.
func (d *daemon) shutdown() error {
	d.stopOnce.Do(func() {
		d.cancel()
		select {
		case err := <-d.done:
			if err != nil {
				d.stopErr = fmt.Errorf("lablog run: %w\n%s", err, d.logs)
			}
		case <-time.After(30 * time.Second):
			d.stopErr = fmt.Errorf("lablog run did not stop within 30s\n%s", d.logs)
		}
	})
	return d.stopErr
}

// stop ends the daemon and checks it exited cleanly.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.shutdown(); err != nil {
		t.Error(err)
	}
}

func (d *daemon) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(d.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (d *daemon) status(t *testing.T) status.Snapshot {
	t.Helper()
	code, body := d.get(t, "/api/status")
	if code != http.StatusOK {
		t.Fatalf("GET /api/status: %d %s", code, body)
	}
	var s status.Snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("/api/status: %v\n%s", err, body)
	}
	return s
}

// publishFrames sends n frames of a stream and returns their total size.
func publishFrames(host *labsim.Host, stream string, n int) int64 {
	var total int64
	for i := range n {
		f := fmt.Sprintf(`{"user":"u-%s","t":%d,"type":"log","payload":{"n":%d}}`, stream, 1764165600000+i, i)
		host.Publish(stream, []byte(f), false)
		total += int64(len(f))
	}
	return total
}

func TestDaemonStatusAPIAndMetricsMatchWhatWasSent(t *testing.T) {
	names := []string{"spin30", "spin31", "pend00"}
	d := runInProcess(t, names, "", "")
	sent := map[string]int64{"spin30": 40, "spin31": 7, "pend00": 0}
	bytesSent := map[string]int64{}
	for _, n := range names {
		bytesSent[n] = publishFrames(d.host, n, int(sent[n]))
	}
	testkit.Eventually(t, 20*time.Second, "the status to count every frame and see the archive", func() bool {
		s := d.status(t)
		for _, st := range s.Streams {
			// The rolling windows catch up at the next sample (every second).
			if st.MessagesTotal != sent[st.Name] || st.MessagesLastMinute != sent[st.Name] {
				return false
			}
		}
		return s.Archive.CheckedAt != nil && s.Buffer.CommittedTotal >= 47+3
	})
	s := d.status(t)
	if len(s.Streams) != 3 {
		t.Fatalf("streams %+v", s.Streams)
	}
	for _, st := range s.Streams {
		want := sent[st.Name]
		var lastAt bool = st.LastMessageAt != nil
		if st.State != status.StateConnected || !st.Connected || st.MessagesTotal != want || st.BytesTotal != bytesSent[st.Name] ||
			st.ReconnectsTotal != 0 || st.ReconnectsToday != 0 || st.DroppedTotal != 0 || st.LastError != "" ||
			st.TokenExpiresAt != nil || lastAt != (want > 0) || st.Since == nil {
			t.Errorf("%s: %+v, want connected with %d frames, %d bytes", st.Name, st, want, bytesSent[st.Name])
		}
		if st.MessagesLastHour != want || st.MessagesLastMinute != want {
			t.Errorf("%s: last minute %d, last hour %d, want %d", st.Name, st.MessagesLastMinute, st.MessagesLastHour, want)
		}
	}
	if names := []string{s.Streams[0].Name, s.Streams[1].Name, s.Streams[2].Name}; strings.Join(names, ",") != "pend00,spin30,spin31" {
		t.Errorf("streams not sorted: %v", names)
	}
	b := s.Buffer
	// Frames plus one connected record per stream, all committed.
	if b.CommittedTotal != 47+3 || b.QueueCapacity != 16384 || b.DroppedTotal != 0 || b.WriterStalled || b.WriterError != "" ||
		b.LastCommitAt == nil || b.SizeBytes <= 0 || b.MaxBytes != 1<<30 {
		t.Errorf("buffer %+v", b)
	}
	a := s.Archive
	if a.Path != d.archive || !a.Available || a.Problem != "" || a.FreeBytes == nil || a.LastCompaction == nil || !a.LastCompaction.OK {
		t.Errorf("archive %+v", a)
	}
	if s.Version != versionString() || s.UptimeSeconds < 0 || time.Since(s.Time) > time.Minute || !s.Recording {
		t.Errorf("top level: %+v", s)
	}
	if s.ClockSynced && s.Health != status.HealthOK || !s.ClockSynced && s.Health != status.HealthWarning || !s.ClockExpected {
		t.Errorf("health %q with clock synced %v; problems %v", s.Health, s.ClockSynced, s.Problems)
	}
	wantHealthz := "recording\n"
	if !s.ClockSynced {
		wantHealthz += "warning: system clock not synchronised (records are marked clock_synced = false until it is)\n"
	}
	if code, body := d.get(t, "/healthz"); code != 200 || string(body) != wantHealthz {
		t.Errorf("/healthz: %d %q", code, body)
	}

	fams := scrapeMetrics(t, d)
	for _, n := range names {
		if got := metricValue(fams, "lablog_messages_received_total", n); got != float64(sent[n]) {
			t.Errorf("lablog_messages_received_total{stream=%q} = %v, want %d", n, got, sent[n])
		}
		if got := metricValue(fams, "lablog_received_bytes_total", n); got != float64(bytesSent[n]) {
			t.Errorf("lablog_received_bytes_total{stream=%q} = %v, want %d", n, got, bytesSent[n])
		}
		if got := metricValue(fams, "lablog_stream_connected", n); got != 1 {
			t.Errorf("lablog_stream_connected{stream=%q} = %v", n, got)
		}
		if got := metricValue(fams, "lablog_reconnects_total", n); got != 0 {
			t.Errorf("lablog_reconnects_total{stream=%q} = %v", n, got)
		}
	}
	for name, want := range map[string]float64{
		"lablog_records_committed_total": 50, "lablog_queue_dropped_total": 0, "lablog_queue_depth": 0,
		"lablog_archive_available": 1, "lablog_writer_stalled": 0,
	} {
		if got := metricValue(fams, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Every commit was timed; compaction ran at start.
	commits := fams["lablog_commit_duration_seconds"].Metric[0].Histogram.GetSampleCount()
	if commits == 0 || commits > 50 {
		t.Errorf("lablog_commit_duration_seconds count %d, want 1..50", commits)
	}
	if runs := metricValue(fams, "lablog_compaction_runs_total", ""); runs < 1 {
		t.Errorf("lablog_compaction_runs_total = %v", runs)
	}
	// A stream cut and refused turns to reconnecting, with a reconnect
	// counted once it is back.
	d.host.Refuse("spin31", true)
	d.host.DropClients("spin31")
	testkit.Eventually(t, 10*time.Second, "spin31 reconnecting", func() bool {
		for _, st := range d.status(t).Streams {
			if st.Name == "spin31" {
				return st.State == status.StateReconnecting && strings.Contains(st.LastError, "503")
			}
		}
		return false
	})
	d.host.Refuse("spin31", false)
	testkit.Eventually(t, 10*time.Second, "spin31 back", func() bool {
		for _, st := range d.status(t).Streams {
			if st.Name == "spin31" {
				return st.State == status.StateConnected && st.ReconnectsTotal == 1 && st.ReconnectsToday == 1
			}
		}
		return false
	})
}
