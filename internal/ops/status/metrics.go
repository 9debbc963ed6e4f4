package status

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/publish/compactor"
)

// metrics is lablog's own Prometheus registry (never the global one, so
// tests and several monitors in one process do not collide). Counters the
// pipeline already keeps are read at scrape time by a collector; events only
// hooks see (commit latency, compaction runs) feed client_golang metrics.
type metrics struct {
	reg       *prometheus.Registry
	commitDur prometheus.Histogram
	commitLat commitRing // exact recent percentiles for /api/status
	compRuns  prometheus.Counter
	compFails prometheus.Counter
	compDur   prometheus.Histogram
}

func newMetrics(m *Monitor) *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lablog_commit_duration_seconds",
			Help: "Time of one buffer commit (one fsync pair however many records).",
			// SD cards: ~6-10 ms typical, spikes to 70 ms and beyond.
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		compRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lablog_compaction_runs_total",
			Help: "Compaction runs, successful or not.",
		}),
		compFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lablog_compaction_failures_total",
			Help: "Compaction runs that ended with an error (records stay in the buffer).",
		}),
		compDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lablog_compaction_duration_seconds",
			Help:    "Time of one compaction run.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900},
		}),
	}
	x.reg.MustRegister(x.commitDur, x.compRuns, x.compFails, x.compDur,
		&pipelineCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return x
}

func (x *metrics) commit(took time.Duration) {
	x.commitDur.Observe(took.Seconds())
	x.commitLat.add(took)
}

func (x *metrics) compaction(res compactor.Result) {
	x.compRuns.Inc()
	if res.Err != nil {
		x.compFails.Inc()
	}
	x.compDur.Observe(res.Finished.Sub(res.Started).Seconds())
}

var (
	descMessages = prometheus.NewDesc("lablog_messages_received_total",
		"Websocket messages (frames) received per stream; one frame may hold several glued JSON messages.", []string{"stream"}, nil)
	descBytes = prometheus.NewDesc("lablog_received_bytes_total",
		"Bytes of websocket messages received per stream.", []string{"stream"}, nil)
	descConnected = prometheus.NewDesc("lablog_stream_connected",
		"1 while the stream's websocket is connected.", []string{"stream"}, nil)
	descReconnects = prometheus.NewDesc("lablog_reconnects_total",
		"Successful connections of the stream after its first.", []string{"stream"}, nil)
	descTokenExpiry = prometheus.NewDesc("lablog_token_expiry_timestamp_seconds",
		"When the stream's relay token expires (Unix time); absent when unknown.", []string{"stream"}, nil)
	descQueueDepth = prometheus.NewDesc("lablog_queue_depth",
		"Records waiting between the sockets and the buffer writer.", nil, nil)
	descQueueCap = prometheus.NewDesc("lablog_queue_capacity",
		"Size of the writer queue (buffer.queue).", nil, nil)
	descDropped = prometheus.NewDesc("lablog_queue_dropped_total",
		"Records dropped because the writer queue was full.", nil, nil)
	descCommitted = prometheus.NewDesc("lablog_records_committed_total",
		"Records committed to the buffer.", nil, nil)
	descFsyncs = prometheus.NewDesc("lablog_buffer_fsyncs_total",
		"Fsyncs of the buffer file (a commit makes two, three when the file grows).", nil, nil)
	descCommitFails = prometheus.NewDesc("lablog_commit_failures_total",
		"Buffer commits that failed (the writer holds the records and retries).", nil, nil)
	descStalled = prometheus.NewDesc("lablog_writer_stalled",
		"1 while the buffer writer is stalled (commits failing or the queue not draining).", nil, nil)
	descBufBytes = prometheus.NewDesc("lablog_buffer_bytes",
		"Size of the bbolt buffer file.", nil, nil)
	descWaiting = prometheus.NewDesc("lablog_buffer_records_waiting",
		"Records in the buffer not yet archived (checked every few seconds).", nil, nil)
	descArchiveUp = prometheus.NewDesc("lablog_archive_available",
		"1 when the archive drive is mounted and writable.", nil, nil)
	descFree = prometheus.NewDesc("lablog_archive_free_bytes",
		"Free space on the archive drive; absent while it is unavailable.", nil, nil)
	descClock = prometheus.NewDesc("lablog_clock_synced",
		"1 when the system clock is NTP-synchronised.", nil, nil)
	descProvision = prometheus.NewDesc("lablog_provision_state",
		"1 for the current state of the stream's relay host rule (rule_posted, host_unreachable, host_unexpected, token_expired, token_invalid, waiting), 0 for the others; only for streams whose rules lablog keeps.",
		[]string{"stream", "state"}, nil)
	descInfo = prometheus.NewDesc("lablog_build_info",
		"Always 1; the version is a label.", []string{"version"}, nil)
)

// pipelineCollector reads a snapshot at each scrape, so the metrics and the
// page never disagree.
type pipelineCollector struct{ m *Monitor }

func (c *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descBytes, descConnected, descReconnects, descTokenExpiry,
		descQueueDepth, descQueueCap, descDropped, descCommitted, descFsyncs, descCommitFails, descStalled, descBufBytes,
		descWaiting, descArchiveUp, descFree, descClock, descInfo, descFaultsActive, descFaultEvents, descProvision} {
		ch <- d
	}
	for _, d := range uploadDescs {
		ch <- d
	}
	for _, d := range retentionDescs {
		ch <- d
	}
	for _, d := range addlogDescs {
		ch <- d
	}
}

func (c *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Snapshot()
	ws := c.m.p.WriterStats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range s.Streams {
		counter(descMessages, float64(st.MessagesTotal), st.Name)
		counter(descBytes, float64(st.BytesTotal), st.Name)
		gauge(descConnected, b2f(st.Connected), st.Name)
		counter(descReconnects, float64(st.ReconnectsTotal), st.Name)
		if st.TokenExpiresAt != nil {
			gauge(descTokenExpiry, float64(st.TokenExpiresAt.Unix()), st.Name)
		}
		if st.Provision != "" {
			for _, state := range provisionStates {
				gauge(descProvision, b2f(st.Provision == state), st.Name, state)
			}
		}
	}
	gauge(descQueueDepth, float64(s.Buffer.QueueDepth))
	gauge(descQueueCap, float64(s.Buffer.QueueCapacity))
	counter(descDropped, float64(s.Buffer.DroppedTotal))
	counter(descCommitted, float64(s.Buffer.CommittedTotal))
	counter(descFsyncs, float64(ws.Fsyncs))
	counter(descCommitFails, float64(ws.Failures))
	gauge(descStalled, b2f(s.Buffer.WriterStalled))
	gauge(descBufBytes, float64(s.Buffer.SizeBytes))
	gauge(descWaiting, float64(s.Buffer.RecordsWaiting))
	gauge(descArchiveUp, b2f(s.Archive.Available))
	if s.Archive.FreeBytes != nil {
		gauge(descFree, float64(*s.Archive.FreeBytes))
	}
	gauge(descClock, b2f(s.ClockSynced))
	gauge(descInfo, 1, s.Version)
	collectFaults(ch, s, c.m.p.FaultCounts())
	collectUpload(ch, s.Upload)
	collectRetention(ch, s.Retention)
	collectAddLog(ch, s.AddLog, s.Time)
}

// provisionStates are every value of lablog_provision_state's state label.
var provisionStates = []string{relay.ProvisionRulePosted, relay.ProvisionHostUnreachable, relay.ProvisionHostUnexpected,
	relay.ProvisionTokenExpired, relay.ProvisionTokenInvalid, relay.ProvisionWaiting}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
