// Package recorder wires lablog's pipeline: one source per stream feeding the
// buffer's writer, and the compactor moving closed hours to the archive. It
// owns their goroutines: Open starts nothing, Run runs them all until its
// context ends and then shuts down in order, so nothing queued is lost, and
// closes; Close releases a recorder that never ran. lablog run and lablog
// demo both drive it this way.
package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/platform/supervise"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/publish/retention"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/privacy"
	"github.com/practable/lablog/internal/record/source"
)

// Recorder is an assembled pipeline.
type Recorder struct {
	log    *slog.Logger
	db     *buffer.DB
	writer *buffer.Writer
	// pseudonymiser replaces user ids at ingest; nil when
	// privacy.pseudonymise is off. enqueue is the writer's Enqueue behind it.
	pseudonymiser *privacy.Pseudonymiser
	enqueue       func(frame.Record) bool
	sources       []*source.Source
	compactor     *compactor.Compactor
	faults        *fault.Store
	analytics     *analytics.Store // nil when the live store is off
	// retention removes old files from the drive; nil when
	// archive.keep_days is 0.
	retention *retention.Sweeper
	// provisioners keep relay hosts' rules (see relay.go).
	provisioners []*relay.Provisioner
	// uploader ships published files to a bucket; nil when upload is off.
	uploader *upload.Uploader
	// extras are what Options.Extras made: fixed at Open, before
	// anything runs, so the writer and the compactor read its hooks
	// without a lock.
	extras Extras

	closeOnce sync.Once
	closeErr  error
}

// Hooks observe the pipeline for metrics. Every field is optional. They are
// called on the writer's or the compactor's goroutine, so they must be quick.
type Hooks struct {
	// OnCommit follows each successful commit of the writer.
	OnCommit func(records int, took time.Duration)
	// OnCommitFailure follows each failed commit (the writer retries).
	OnCommitFailure func(err error)
	// OnCompaction follows each compaction run.
	OnCompaction func(compactor.Result)
}

// Runner is a long-running part the recorder starts and stops with the
// pipeline: it runs until its context ends.
type Runner = supervise.Runner

// Extras are the parts made from the assembled pipeline (see
// Options.Extras).
type Extras struct {
	// Ingress are the other doors records come in by besides the
	// sources (the /addLog listener; they hand records to Enqueue): Run
	// starts and stops them with the sources, so they enqueue nothing
	// once the writer drains.
	Ingress []Runner
	// Followers read the records the writer commits (store and forward,
	// from the buffer and the archive): Run stops them once the writer
	// has drained, before the buffer closes.
	Followers []Runner
	// Hooks observe the pipeline (the status monitor's metrics).
	Hooks []Hooks
}

// writerOptions are the writer's: its callbacks feed the fault record, the
// compactor and the hooks.
func (r *Recorder) writerOptions(o Options) buffer.WriterOptions {
	return buffer.WriterOptions{
		Queue:    o.Queue,
		Interval: o.CommitInterval,
		Logger:   r.log,
		OnRefused: func(n int64, why error) {
			detail := fmt.Sprintf("the buffer reached max_size (%d bytes): frames refused", r.db.MaxSize())
			if buffer.IsDiskFull(why) {
				detail = fmt.Sprintf("the disk holding the buffer (%s) is full: frames refused", r.db.Path())
			}
			r.faults.Report(fault.FramesRefused, detail, n)
		},
		OnCommit: func(n int, took time.Duration) {
			r.compactor.TriggerIfFull()
			for _, h := range r.extras.Hooks {
				if h.OnCommit != nil {
					h.OnCommit(n, took)
				}
			}
		},
		OnFailure: func(err error) {
			for _, h := range r.extras.Hooks {
				if h.OnCommitFailure != nil {
					h.OnCommitFailure(err)
				}
			}
		},
	}
}

// Options are the whole pipeline's: every component's own options,
// ready made (package wire derives them from the configuration). The
// recorder fills in what ties the components together: the buffer, the
// writer's and the compactor's callbacks, the fault record.
type Options struct {
	// BufferPath is the bbolt file; Buffer its options.
	BufferPath string
	Buffer     buffer.Options
	// Queue is how many records may wait for the writer; CommitInterval
	// the least time between the starts of two commits.
	Queue          int
	CommitInterval time.Duration
	// FaultsPath is the record of faults (see fault.Open).
	FaultsPath string
	// Sources are the streams' websocket clients, one each.
	Sources []source.Config
	// RelayHosts are the relay hosts whose rules lablog keeps.
	RelayHosts []RelayHost
	// Compactor moves closed hours to the archive; its Root and Require
	// are also where the analytics export goes. Its Fault, BeforeSettle
	// and OnResult are the recorder's.
	Compactor compactor.Options
	// AnalyticsExport is how often changed matrices are exported.
	AnalyticsExport time.Duration
	// NoAnalytics turns the live analytics store off (analytics.live).
	NoAnalytics bool
	// Pseudonymiser replaces user ids at ingest; nil: ids kept as sent.
	Pseudonymiser *privacy.Pseudonymiser
	// Retention removes old archive files; nil when nothing expires.
	Retention *retention.Options
	// Upload ships published files to a bucket; nil when upload is off.
	Upload *UploadOptions
	// Logger is where the pipeline logs (nil: slog.Default()).
	Logger *slog.Logger
	// Extras, when set, makes the parts that need the assembled
	// pipeline (its Enqueue, Buffer, stats), once Open has assembled it
	// and before anything runs; an error fails Open.
	Extras func(*Recorder) (Extras, error)
}

// RelayHost is one relay host whose destination rules lablog keeps for
// Streams, checking them every Interval.
type RelayHost struct {
	URL      string
	Interval time.Duration
	Streams  []relay.Credentials
}

// UploadOptions are the uploader's, with the file its credentials are read
// from (again at every look, so fixing the file needs no restart).
type UploadOptions struct {
	upload.Options
	CredentialsFile string
}

// Open opens the buffer and assembles the pipeline. It fails at once when
// another process holds the buffer.
func Open(o Options) (*Recorder, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	bo := o.Buffer
	bo.Logger = log
	db, err := buffer.Open(o.BufferPath, bo)
	if err != nil {
		return nil, err
	}
	r := &Recorder{log: log, db: db, faults: fault.Open(o.FaultsPath, fault.Options{Logger: log})}
	if q := db.Quarantined(); q != "" {
		r.faults.Report(fault.BufferQuarantined, q, 1)
	}
	r.writer = buffer.NewWriter(db, r.writerOptions(o))
	r.pseudonymiser = o.Pseudonymiser
	r.enqueue = r.pseudonymiser.Enqueue(r.writer.Enqueue)
	for _, sc := range o.Sources {
		sc.Logger = log
		r.sources = append(r.sources, source.New(sc, r))
	}
	for _, h := range o.RelayHosts {
		api, err := relay.NewHostAPI(h.URL, nil)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("recorder: %w", err)
		}
		r.provisioners = append(r.provisioners, relay.NewProvisioner(relay.ProvisionOptions{API: api, Interval: h.Interval, Streams: h.Streams, Logger: log}))
	}
	if !o.NoAnalytics {
		r.analytics, err = analytics.OpenStore(db, analytics.Options{
			Export:    o.AnalyticsExport,
			Committed: func() int64 { return r.writer.Stats().Committed },
			Behind:    r.writer.Behind,
			Target: func() (*archive.Root, error) {
				return archive.OpenRoot(o.Compactor.Root, o.Compactor.Require)
			},
			Logger: log,
		})
		if err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	if o.Retention != nil {
		ro := *o.Retention
		ro.Logger = log
		r.retention = retention.New(ro)
	}
	if o.Upload != nil {
		uo := o.Upload.Options
		uo.Logger = log
		uo.Fault = r.faults.Report
		r.uploader = upload.NewFromFile(uo, o.Upload.CredentialsFile)
	}
	opts := o.Compactor
	opts.Logger = log
	opts.Fault = r.faults.Report
	if r.analytics != nil {
		opts.BeforeSettle = r.analytics.BeforeSettle
	}
	opts.OnResult = func(res compactor.Result) {
		for _, h := range r.extras.Hooks {
			if h.OnCompaction != nil {
				h.OnCompaction(res)
			}
		}
		if r.uploader != nil && res.Files > 0 {
			r.uploader.Trigger()
		}
	}
	r.compactor = compactor.New(db, opts)
	if o.Extras != nil {
		if r.extras, err = o.Extras(r); err != nil {
			_ = r.Close()
			return nil, err
		}
	}
	return r, nil
}

// Enqueue is the door every record comes in by, the sources' and the
// ingress's (Writer().Enqueue would skip the pseudonymiser): it hands rec,
// its user ids pseudonymised when privacy.pseudonymise is on, to the
// writer.
func (r *Recorder) Enqueue(rec frame.Record) bool { return r.enqueue(rec) }

// Pseudonymiser hashes user ids as ingest does; nil when pseudonymising
// is off.
func (r *Recorder) Pseudonymiser() *privacy.Pseudonymiser { return r.pseudonymiser }

// Retention removes old files from the drive; nil when archive.keep_days
// is 0.
func (r *Recorder) Retention() *retention.Sweeper { return r.retention }

// Buffer is the open buffer.
func (r *Recorder) Buffer() *buffer.DB { return r.db }

// Writer is the buffer's writer.
func (r *Recorder) Writer() *buffer.Writer { return r.writer }

// Compactor is the archive's compactor.
func (r *Recorder) Compactor() *compactor.Compactor { return r.compactor }

// Uploader ships the archive to a bucket; nil when upload is off.
func (r *Recorder) Uploader() *upload.Uploader { return r.uploader }

// Analytics is the live learning-analytics store; nil when it is off.
func (r *Recorder) Analytics() *analytics.Store { return r.analytics }

// Faults is the record of faults the status shows until acknowledged.
func (r *Recorder) Faults() *fault.Store { return r.faults }

// Sources reports every stream's state.
func (r *Recorder) Sources() []source.Stats {
	out := make([]source.Stats, len(r.sources))
	for i, s := range r.sources {
		out[i] = s.Stats()
	}
	return out
}

// Run records until ctx is done, then stops the pipeline in reverse order
// of start and closes the buffer. The order is what keeps every record:
// the sources and the other ingress stop first, so nothing is enqueued once
// the writer drains; the compactor and the uploader stop before the writer
// commits its last batch; the followers (store and forward) and, last, the
// analytics store read what the writer committed before the buffer closes.
func (r *Recorder) Run(ctx context.Context) error {
	if q := r.db.Quarantined(); q != "" {
		r.log.Error("BUFFER WAS CORRUPT: it was set aside and recording started on a fresh one",
			"quarantined", q)
	}
	// The writer's pages leave the resident set now and then (scans and
	// settles drop theirs as they go): the RSS does not grow with the buffer.
	release := supervise.Func(func(ctx context.Context) error {
		return r.db.ReleaseMappedEvery(ctx, buffer.ReleaseInterval)
	})
	archivers := []supervise.Runner{r.compactor, release}
	if r.uploader != nil {
		archivers = append(archivers, r.uploader)
	}
	if r.retention != nil {
		archivers = append(archivers, r.retention)
	}
	var stores []supervise.Runner
	if r.analytics != nil {
		stores = append(stores, r.analytics)
	}
	var inputs []supervise.Runner
	for _, s := range r.sources {
		inputs = append(inputs, s)
	}
	for _, p := range r.provisioners {
		inputs = append(inputs, p)
	}
	inputs = append(inputs, r.extras.Ingress...)
	// The shutdown's start, for the log: the input stage stops first.
	var start time.Time
	inputs = append(inputs, supervise.Func(func(ctx context.Context) error {
		<-ctx.Done()
		start = time.Now()
		return nil
	}))
	// Each component logs its own failures; none stops the recording.
	_ = supervise.Run(ctx, r.log,
		supervise.Stage{Name: "analytics", Runners: stores},
		supervise.Stage{Name: "follower", Runners: r.extras.Followers},
		supervise.Stage{Name: "writer", Runners: []supervise.Runner{r.writer}},
		supervise.Stage{Name: "archiver", Runners: archivers},
		supervise.Stage{Name: "input", Runners: inputs},
	)
	st := r.writer.Stats()
	err := r.Close()
	r.log.Info("stopped", "committed", st.Committed, "dropped", st.Dropped,
		"took", time.Since(start).Round(time.Millisecond))
	return err
}

// Close releases the buffer and saves the fault record. Run does it when it
// returns; call it for a recorder that was opened but never run. It is safe
// to call more than once.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		if err := r.db.Close(); err != nil {
			r.closeErr = fmt.Errorf("recorder: %w", err)
		}
		if err := r.faults.Flush(); err != nil {
			r.log.Error("fault record not saved", logkey.Err, err)
		}
	})
	return r.closeErr
}
