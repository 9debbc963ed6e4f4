package main

import (
	"bytes"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func scrapeMetrics(t *testing.T, d *daemon) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := d.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue is a counter's or gauge's value, by stream label if given;
// -1 when absent.
func metricValue(fams map[string]*dto.MetricFamily, name, stream string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		ok := stream == ""
		for _, l := range m.Label {
			if l.GetName() == "stream" && l.GetValue() == stream {
				ok = true
			}
		}
		if !ok {
			continue
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		if m.Gauge != nil {
			return m.Gauge.GetValue()
		}
	}
	return -1
}
