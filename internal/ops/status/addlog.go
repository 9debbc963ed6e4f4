package status

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/practable/lablog/internal/record/addlog"
)

var (
	descALStatements = prometheus.NewDesc("lablog_addlog_statements_total",
		"Statements acknowledged on /addLog, by hardware (as the UI named it) and verb (other: an unknown verb).",
		[]string{"hardware", "verb"}, nil)
	descALRejected = prometheus.NewDesc("lablog_addlog_rejected_total",
		"Calls to /addLog answered without recording: unauthorized (401), too_large (413), rate_limited (429), refused (503).",
		[]string{"reason"}, nil)
	descALLast = prometheus.NewDesc("lablog_addlog_last_statement_timestamp_seconds",
		"When the last statement was acknowledged; absent before the first.", nil, nil)
	descFwForwarded = prometheus.NewDesc("lablog_addlog_forward_statements_total",
		"Statements forwarded to the upstream logging host (answered 2xx), by where they were read: buffer or archive.",
		[]string{"from"}, nil)
	descFwFailures = prometheus.NewDesc("lablog_addlog_forward_failures_total",
		"Attempts to forward a statement that the upstream did not answer with a 2xx.", nil, nil)
	descFwSkipped = prometheus.NewDesc("lablog_addlog_forward_skipped_total",
		"Statements found in neither the buffer nor the archive (set aside as damaged): never forwarded.", nil, nil)
	descFwPending = prometheus.NewDesc("lablog_addlog_forward_pending_statements",
		"Statements recorded and not yet forwarded.", nil, nil)
	descFwLag = prometheus.NewDesc("lablog_addlog_forward_lag_seconds",
		"Age of the oldest statement not yet forwarded; 0 when none waits.", nil, nil)
	addlogDescs = []*prometheus.Desc{descALStatements, descALRejected, descALLast,
		descFwForwarded, descFwFailures, descFwSkipped, descFwPending, descFwLag}
)

func collectAddLog(ch chan<- prometheus.Metric, a *addlog.Stats, now time.Time) {
	if a == nil {
		return
	}
	for _, c := range a.Statements {
		ch <- prometheus.MustNewConstMetric(descALStatements, prometheus.CounterValue, float64(c.Count), c.Hardware, c.Verb)
	}
	for reason, n := range map[string]int64{"unauthorized": a.Unauthorized, "too_large": a.TooLarge,
		"rate_limited": a.RateLimited, "refused": a.Refused} {
		ch <- prometheus.MustNewConstMetric(descALRejected, prometheus.CounterValue, float64(n), reason)
	}
	if a.LastStatement != nil {
		ch <- prometheus.MustNewConstMetric(descALLast, prometheus.GaugeValue, float64(a.LastStatement.UnixNano())/1e9)
	}
	if f := a.Forward; f != nil {
		ch <- prometheus.MustNewConstMetric(descFwForwarded, prometheus.CounterValue, float64(f.Forwarded-f.FromArchive), "buffer")
		ch <- prometheus.MustNewConstMetric(descFwForwarded, prometheus.CounterValue, float64(f.FromArchive), "archive")
		ch <- prometheus.MustNewConstMetric(descFwFailures, prometheus.CounterValue, float64(f.Failures))
		ch <- prometheus.MustNewConstMetric(descFwSkipped, prometheus.CounterValue, float64(f.Skipped))
		ch <- prometheus.MustNewConstMetric(descFwPending, prometheus.GaugeValue, float64(f.Pending))
		ch <- prometheus.MustNewConstMetric(descFwLag, prometheus.GaugeValue, f.Lag(now).Seconds())
	}
}
