package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// counters are the child's figures from one scrape of /metrics.
type counters struct {
	Committed, Dropped, Fsyncs, QueueDepth, Connected float64
	Commits                                           float64 // lablog_commit_duration_seconds_count
	CommitBuckets                                     []Bucket
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

func scrape(ctx context.Context, base string) (counters, error) {
	body, err := get(ctx, base+"/metrics")
	if err != nil {
		return counters{}, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return counters{}, fmt.Errorf("parse %s/metrics: %w", base, err)
	}
	sum := func(name string) float64 {
		f := fams[name]
		if f == nil {
			return math.NaN()
		}
		t := 0.0
		for _, m := range f.Metric {
			switch {
			case m.Counter != nil:
				t += m.Counter.GetValue()
			case m.Gauge != nil:
				t += m.Gauge.GetValue()
			}
		}
		return t
	}
	c := counters{
		Committed:  sum("lablog_records_committed_total"),
		Dropped:    sum("lablog_queue_dropped_total"),
		Fsyncs:     sum("lablog_buffer_fsyncs_total"),
		QueueDepth: sum("lablog_queue_depth"),
		Connected:  sum("lablog_stream_connected"),
		Commits:    math.NaN(),
	}
	if f := fams["lablog_commit_duration_seconds"]; f != nil && len(f.Metric) > 0 && f.Metric[0].Histogram != nil {
		h := f.Metric[0].Histogram
		c.Commits = float64(h.GetSampleCount())
		for _, b := range h.Bucket {
			c.CommitBuckets = append(c.CommitBuckets, Bucket{Upper: b.GetUpperBound(), Count: float64(b.GetCumulativeCount())})
		}
		if n := len(c.CommitBuckets); n == 0 || !math.IsInf(c.CommitBuckets[n-1].Upper, 1) {
			c.CommitBuckets = append(c.CommitBuckets, Bucket{Upper: math.Inf(1), Count: c.Commits})
		}
		sort.Slice(c.CommitBuckets, func(i, j int) bool { return c.CommitBuckets[i].Upper < c.CommitBuckets[j].Upper })
	}
	return c, nil
}

// apiStatus is the part of /api/status the bench reads. CommitMs is absent
// from binaries older than the field: then latencies come from the histogram.
type apiStatus struct {
	Buffer struct {
		QueueDepth float64 `json:"queue_depth"`
		CommitMs   *struct {
			Commits       int
			P50, P99, Max float64
		} `json:"commit_ms"`
	} `json:"buffer"`
}

func readStatus(ctx context.Context, base string) (apiStatus, error) {
	var s apiStatus
	body, err := get(ctx, base+"/api/status")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("parse %s/api/status: %w", base, err)
	}
	return s, nil
}
