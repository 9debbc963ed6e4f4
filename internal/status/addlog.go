package status

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/practable/lablog/internal/addlog"
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
	addlogDescs = []*prometheus.Desc{descALStatements, descALRejected, descALLast}
)

func collectAddLog(ch chan<- prometheus.Metric, a *addlog.Stats) {
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
}
