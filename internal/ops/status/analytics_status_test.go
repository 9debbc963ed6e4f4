package status

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/analytics"
)

// countingPipeline is a fake pipeline with a live analytics store.
type countingPipeline struct {
	*fakePipeline
	counts analytics.Counts
}

func (c *countingPipeline) AnalyticsCounts() (analytics.Counts, error) { return c.counts, nil }

// The status shows the analytics store's counts, and only counts; without
// a store the field is null.
func TestAnalyticsCountsOnStatus(t *testing.T) {
	m, f, _, _ := scene(t)
	m.checkArchive(t0)
	m.sample(t0)
	_, body, _ := get(t, m.Handler(), "/api/status")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if string(doc["analytics"]) != "null" {
		t.Errorf("analytics without a store: %s, want null", doc["analytics"])
	}

	cp := &countingPipeline{fakePipeline: f, counts: analytics.Counts{Graphs: 12, Commands: 3456, Due: 2}}
	m2 := New(cp, m.opts)
	m2.checkArchive(t0)
	m2.sample(t0)
	_, body, _ = get(t, m2.Handler(), "/api/status")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	var got map[string]int64
	if err := json.Unmarshal(doc["analytics"], &got); err != nil || len(got) != 3 ||
		got["graphs"] != 12 || got["commands"] != 3456 || got["due"] != 2 {
		t.Errorf("analytics %s (%v), want exactly graphs, commands, due", doc["analytics"], err)
	}
	_, page, _ := get(t, m2.Handler(), "/")
	if !strings.Contains(page, "12 student graphs, 3456 commands, 2 to export") {
		t.Errorf("the page lacks the counts")
	}
}
