package status

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/practable/lablog/internal/publish/compactor"
)

// scrape GETs /metrics and parses it with Prometheus' own text parser.
func scrape(t *testing.T, m *Monitor) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, _ := get(t, m.Handler(), "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value is the metric of fams named name with the stream label, if given.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name, stream string) (float64, bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		match := stream == ""
		for _, l := range m.Label {
			if l.GetName() == "stream" && l.GetValue() == stream {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	m, f, clk, _ := scene(t)
	f.set(func(f *fakePipeline) {
		f.sources[0].Frames, f.sources[0].Bytes, f.sources[0].Reconnects = 120, 24000, 3
		f.writer.Dropped, f.writer.Failures = 6, 2
	})
	m.sample(t0)
	m.checkArchive(t0)
	m.ObserveCommit(10, 8*time.Millisecond)
	m.ObserveCommit(1, 70*time.Millisecond)
	m.ObserveCompaction(compactor.Result{Started: t0, Finished: t0.Add(1500 * time.Millisecond), Files: 1})
	m.ObserveCompaction(compactor.Result{Started: t0, Finished: t0.Add(time.Second), Err: errors.New("drive gone")})
	clk.Advance(time.Second)

	fams := scrape(t, m)
	for _, tc := range []struct {
		name, stream string
		want         float64
		typ          dto.MetricType
	}{
		{"lablog_messages_received_total", "spin30", 120, dto.MetricType_COUNTER},
		{"lablog_messages_received_total", "spin31", 5, dto.MetricType_COUNTER},
		{"lablog_received_bytes_total", "spin30", 24000, dto.MetricType_COUNTER},
		{"lablog_received_bytes_total", "spin31", 900, dto.MetricType_COUNTER},
		{"lablog_stream_connected", "spin30", 1, dto.MetricType_GAUGE},
		{"lablog_stream_connected", "spin31", 0, dto.MetricType_GAUGE},
		{"lablog_reconnects_total", "spin30", 3, dto.MetricType_COUNTER},
		{"lablog_token_expiry_timestamp_seconds", "pend00", float64(t0.Add(72 * time.Hour).Unix()), dto.MetricType_GAUGE},
		{"lablog_queue_depth", "", 3, dto.MetricType_GAUGE},
		{"lablog_queue_capacity", "", 16384, dto.MetricType_GAUGE},
		{"lablog_queue_dropped_total", "", 6, dto.MetricType_COUNTER},
		{"lablog_records_committed_total", "", 500, dto.MetricType_COUNTER},
		{"lablog_commit_failures_total", "", 2, dto.MetricType_COUNTER},
		{"lablog_commit_duration_seconds", "", 2, dto.MetricType_HISTOGRAM},
		{"lablog_buffer_bytes", "", 1 << 20, dto.MetricType_GAUGE},
		{"lablog_buffer_records_waiting", "", 305, dto.MetricType_GAUGE},
		{"lablog_compaction_runs_total", "", 2, dto.MetricType_COUNTER},
		{"lablog_compaction_failures_total", "", 1, dto.MetricType_COUNTER},
		{"lablog_compaction_duration_seconds", "", 2, dto.MetricType_HISTOGRAM},
		{"lablog_archive_available", "", 1, dto.MetricType_GAUGE},
		{"lablog_writer_stalled", "", 0, dto.MetricType_GAUGE},
		{"lablog_clock_synced", "", 1, dto.MetricType_GAUGE},
		{"lablog_build_info", "", 1, dto.MetricType_GAUGE},
	} {
		got, ok := value(t, fams, tc.name, tc.stream)
		if !ok {
			t.Errorf("%s{stream=%q} missing", tc.name, tc.stream)
			continue
		}
		if got != tc.want || fams[tc.name].GetType() != tc.typ {
			t.Errorf("%s{stream=%q} = %v (%v), want %v (%v)", tc.name, tc.stream, got, fams[tc.name].GetType(), tc.want, tc.typ)
		}
	}
	// Token expiry only for streams whose expiry is known.
	if _, ok := value(t, fams, "lablog_token_expiry_timestamp_seconds", "spin31"); ok {
		t.Error("token expiry reported for a stream without a known token")
	}
	if free, ok := value(t, fams, "lablog_archive_free_bytes", ""); !ok || free <= 0 {
		t.Errorf("archive free bytes = %v, %v", free, ok)
	}
	// The histogram's buckets place the 8 ms and 70 ms commits.
	h := fams["lablog_commit_duration_seconds"].Metric[0].Histogram
	for _, b := range h.Bucket {
		want := map[float64]uint64{.005: 0, .01: 1, .05: 1, .1: 2}[b.GetUpperBound()]
		if b.GetUpperBound() == .005 || b.GetUpperBound() == .01 || b.GetUpperBound() == .05 || b.GetUpperBound() == .1 {
			if b.GetCumulativeCount() != want {
				t.Errorf("commit bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
	}
	if v := fams["lablog_build_info"].Metric[0].Label[0].GetValue(); v != "v1.2.3" {
		t.Errorf("build info version %q", v)
	}
	if fams["process_resident_memory_bytes"] == nil || fams["go_goroutines"] == nil {
		t.Error("process and Go runtime metrics missing")
	}
}

// A scraper that offers gzip (Prometheus and Go's client do) gets plain
// text: compressing costs more memory than the daemon has to spare.
func TestMetricsUncompressed(t *testing.T) {
	m, _, _, _ := scene(t)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip, zstd")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "" || !strings.Contains(rec.Body.String(), "lablog_build_info") {
		t.Fatalf("GET /metrics with gzip offered: %d, Content-Encoding %q, body %.80q", rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.String())
	}
}

// Two monitors in one process have registries of their own.
func TestMetricsRegistriesAreSeparate(t *testing.T) {
	a, _, _, _ := scene(t)
	b, _, _, _ := scene(t)
	a.ObserveCommit(1, time.Millisecond)
	if n, _ := value(t, scrape(t, b), "lablog_commit_duration_seconds", ""); n != 0 {
		t.Errorf("commit seen by another monitor's registry: %v", n)
	}
}
