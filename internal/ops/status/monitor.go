// Package status shows whether lablog is recording: a server-rendered page
// for people, GET /api/status for programs, GET /healthz for probes and
// GET /metrics for Prometheus. A Monitor samples the pipeline in the
// background and keeps what is slow to learn (the archive drive, the
// buffer's backlog), so a request never waits on a disk.
package status

import (
	"context"
	"errors"
	"fmt"
	"github.com/practable/lablog/internal/record/addlog"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/publish/retention"
	"github.com/practable/lablog/internal/record/source"
	"github.com/practable/lablog/internal/record/stall"
)

// Options configure a Monitor. Zero fields take the defaults stated.
type Options struct {
	ArchiveRoot string // archive.path
	Require     string // archive.require; default marker
	BufferMax   int64  // buffer.max_size, for the nearly-full warning; 0: no warning
	Version     string
	Started     time.Time // default: when New is called

	Now         func() time.Time // default time.Now
	ClockSynced func() bool      // default source.ClockSynced
	// ClockOptional: an unsynced clock is shown but is no problem. For the
	// demo on a development machine or container, whose records matter to
	// no one; a recorder's timestamps are the data, so it warns.
	ClockOptional bool

	Sample       time.Duration // how often streams are sampled; default 1s
	ArchiveEvery time.Duration // how often the drive and the backlog are checked; default 5s
	DownAfter    time.Duration // a stream not connected this long is an error; default 2m
	TokenWarn    time.Duration // warn this long before a token expires (sources.token_warning); default 30 days
	StallAfter   time.Duration // see package stall; default stall.DefaultAfter
	Refresh      time.Duration // how often the page refreshes itself; default 3s
	Logger       *slog.Logger
	// AddLog reads the /addLog listener's counts; nil when it is off.
	AddLog func() addlog.Stats
	// Retention reads the sweeper of archive.keep_days; nil when it is 0.
	Retention func() retention.Stats
	// PseudonymKeyID is the id of the key user ids are pseudonymised
	// with; "" when they are kept as sent.
	PseudonymKeyID string
}

func (o *Options) setDefaults() {
	if o.Require == "" {
		o.Require = archive.RequireMarker
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Started.IsZero() {
		o.Started = o.Now()
	}
	if o.ClockSynced == nil {
		o.ClockSynced = source.ClockSynced
	}
	if o.Sample <= 0 {
		o.Sample = time.Second
	}
	if o.ArchiveEvery <= 0 {
		o.ArchiveEvery = 5 * time.Second
	}
	if o.DownAfter <= 0 {
		o.DownAfter = 2 * time.Minute
	}
	if o.TokenWarn <= 0 {
		o.TokenWarn = source.DefaultTokenWarning
	}
	if o.StallAfter <= 0 {
		o.StallAfter = stall.DefaultAfter
	}
	if o.Refresh <= 0 {
		o.Refresh = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Monitor samples a Pipeline and answers the status endpoints.
type Monitor struct {
	p       Pipeline
	opts    Options
	metrics *metrics

	mu      sync.Mutex
	streams map[string]*streamTrack
	drops   *Rolling
	dropped int64 // writer's Dropped at the last sample
	stall   stall.Detector
	stalled string // why the writer is stalled, "" when it is not
	arch    archiveCheck
	backlog backlog
	counts  *analytics.Counts // the analytics store's, when the pipeline has one
	lastErr string
	errAt   time.Time
}

// streamTrack is what a stream's counters looked like at the last sample.
type streamTrack struct {
	rate    *Rolling
	frames  int64
	day     string // UTC date of dayBase
	dayBase int64  // Reconnects at the start of day (or at start-up)
	sampled bool
}

type archiveCheck struct {
	at         time.Time
	err        error
	free       *uint64
	filesToday int
	bytesToday int64
}

type backlog struct {
	records int64
	oldest  time.Time
}

// New makes a monitor of p. Call Run to start sampling.
func New(p Pipeline, opts Options) *Monitor {
	opts.setDefaults()
	m := &Monitor{
		p:       p,
		opts:    opts,
		streams: map[string]*streamTrack{},
		drops:   NewRolling(),
		stall:   stall.Detector{After: opts.StallAfter},
	}
	m.metrics = newMetrics(m)
	return m
}

// Run samples until ctx is done; it returns nil.
func (m *Monitor) Run(ctx context.Context) error {
	m.sample(m.opts.Now())
	m.checkArchive(m.opts.Now())
	tick := time.NewTicker(m.opts.Sample)
	defer tick.Stop()
	check := time.NewTicker(m.opts.ArchiveEvery)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.sample(m.opts.Now())
		case <-check.C:
			m.checkArchive(m.opts.Now())
		}
	}
}

// sample folds the counters' growth since the last sample into the rolling
// windows and asks the stall detector about the writer.
func (m *Monitor) sample(now time.Time) {
	srcs := m.p.Sources()
	ws := m.p.WriterStats()
	m.mu.Lock()
	defer m.mu.Unlock()
	day := now.UTC().Format(time.DateOnly) // the page's times are UTC
	for _, s := range srcs {
		tr := m.streams[s.Stream]
		if tr == nil {
			tr = &streamTrack{rate: NewRolling()}
			m.streams[s.Stream] = tr
		}
		if tr.sampled {
			tr.rate.Add(now, s.Frames-tr.frames)
		} else {
			// Frames before the first sample have no time: count them now.
			tr.rate.Add(now, s.Frames)
		}
		tr.frames = s.Frames
		if !tr.sampled || tr.day != day {
			tr.day, tr.dayBase = day, s.Reconnects
		}
		tr.sampled = true
	}
	m.drops.Add(now, ws.Dropped-m.dropped)
	m.dropped = ws.Dropped
	stalled, why := m.stall.Observe(now, ws)
	if stalled && m.stalled == "" {
		m.opts.Logger.Error("writer stalled", "reason", why)
	}
	if !stalled && m.stalled != "" {
		m.opts.Logger.Info("writer recovered")
	}
	m.stalled = why
}

// checkArchive looks at the drive and the buffer's backlog: both touch
// disks, so they run on the monitor's schedule, never in a request.
func (m *Monitor) checkArchive(now time.Time) {
	c := archiveCheck{at: now}
	c.err = archive.CheckTarget(m.opts.ArchiveRoot, m.opts.Require)
	if c.err == nil {
		if free, err := archive.FreeBytes(m.opts.ArchiveRoot); err == nil {
			c.free = &free
		}
		c.filesToday, c.bytesToday = filesOfDay(m.opts.ArchiveRoot, now)
	}
	var counts *analytics.Counts
	if ac, ok := m.p.(AnalyticsCounter); ok {
		if c, err := ac.AnalyticsCounts(); err == nil {
			counts = &c
		} else if !errors.Is(err, analytics.ErrOff) {
			m.opts.Logger.Warn("status: cannot read the analytics store's counts", logkey.Err, err)
		}
	}
	var b backlog
	pending, perr := m.p.Pending()
	for _, p := range pending {
		b.records += int64(p.Records)
		if b.oldest.IsZero() || p.Oldest.Before(b.oldest) {
			b.oldest = p.Oldest
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	was := m.arch
	m.arch = c
	m.counts = counts
	if perr == nil {
		m.backlog = b
	} else {
		m.opts.Logger.Warn("status: cannot read the buffer's backlog", logkey.Err, perr)
	}
	switch {
	case c.err != nil && (was.at.IsZero() || was.err == nil || was.err.Error() != c.err.Error()):
		m.opts.Logger.Warn("archive unavailable; frames stay in the buffer", logkey.Err, c.err)
		m.noteErr(now, c.err.Error())
	case c.err == nil && was.err != nil:
		m.opts.Logger.Info("archive available again", logkey.Path, m.opts.ArchiveRoot)
	}
}

// noteErr keeps the latest archive error; m.mu must be held.
func (m *Monitor) noteErr(at time.Time, msg string) {
	m.lastErr, m.errAt = msg, at
}

// ObserveCompaction counts a compaction run (a recorder hook).
func (m *Monitor) ObserveCompaction(res compactor.Result) {
	m.metrics.compaction(res)
	if res.Err != nil {
		m.mu.Lock()
		m.noteErr(res.Finished, "compaction: "+res.Err.Error())
		m.mu.Unlock()
	}
}

// ObserveCommit times a commit of the writer (a recorder hook).
func (m *Monitor) ObserveCommit(records int, took time.Duration) {
	m.metrics.commit(took)
}

// filesOfDay counts the archive's files, and their bytes, of now's UTC date.
func filesOfDay(root string, now time.Time) (files int, bytes int64) {
	for _, f := range archive.FilesOfDay(root, now) {
		files++
		bytes += f.Size
	}
	return files, bytes
}

// Snapshot is the current status.
func (m *Monitor) Snapshot() Snapshot {
	now := m.opts.Now()
	srcs := m.p.Sources()
	ws := m.p.WriterStats()
	size := m.p.BufferSize()
	last := m.p.LastCompaction()
	synced := m.opts.ClockSynced()
	faults := faultStatuses(now, m.p.ActiveFaults(now))
	up, upOn := m.p.Upload()
	provision := map[string]relay.StreamProvision{}
	for _, ps := range m.p.Provisioning() {
		for stream, sp := range ps.Streams {
			provision[stream] = sp
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{
		Time:          now,
		Version:       m.opts.Version,
		StartedAt:     m.opts.Started,
		UptimeSeconds: int64(now.Sub(m.opts.Started) / time.Second),
		ClockSynced:   synced,
		ClockExpected: !m.opts.ClockOptional,
		Streams:       make([]StreamStatus, 0, len(srcs)),
	}
	for _, src := range srcs {
		st := m.streamStatus(now, src)
		if sp, ok := provision[src.Stream]; ok {
			st.Provision, st.ProvisionError = sp.State, sp.Detail
		}
		s.Streams = append(s.Streams, st)
	}
	sort.SliceStable(s.Streams, func(i, j int) bool { return s.Streams[i].Name < s.Streams[j].Name })

	s.Buffer = BufferStatus{
		SizeBytes:       size,
		MaxBytes:        m.opts.BufferMax,
		RecordsWaiting:  m.backlog.records,
		OldestWaiting:   timePtr(m.backlog.oldest),
		QueueDepth:      ws.Queued,
		QueueCapacity:   ws.QueueCap,
		DroppedTotal:    ws.Dropped,
		DroppedLastHour: m.drops.LastHour(now),
		CommittedTotal:  ws.Committed,
		LastCommitAt:    timePtr(ws.LastCommit),
		WriterStalled:   m.stalled != "",
		Full:            ws.Full,
		DiskFull:        ws.DiskFull,
		RefusedTotal:    ws.Refused,
		WriterError:     ws.LastError,
		CommitMs:        m.metrics.commitLat.summary(),
	}

	s.Analytics = m.counts

	a := &s.Archive
	a.Path, a.Require = m.opts.ArchiveRoot, m.opts.Require
	a.CheckedAt = timePtr(m.arch.at)
	a.Available = !m.arch.at.IsZero() && m.arch.err == nil
	if err := m.arch.err; err != nil {
		// The drive's path is on the page already: say just what is wrong.
		a.Problem = err.Error()
		var te *archive.TargetError
		if errors.As(err, &te) {
			a.Problem = te.Reason
		}
	}
	a.FreeBytes = m.arch.free
	a.FilesToday, a.BytesToday = m.arch.filesToday, m.arch.bytesToday
	if !last.Finished.IsZero() {
		c := &CompactionStatus{
			StartedAt:       last.Started,
			FinishedAt:      last.Finished,
			DurationSeconds: last.Finished.Sub(last.Started).Seconds(),
			OK:              last.Err == nil,
			Files:           last.Files,
			Records:         last.Records,
			Bytes:           last.Bytes,
		}
		if last.Err != nil {
			c.Error = last.Err.Error()
		}
		a.LastCompaction = c
	}
	a.LastError, a.LastErrorAt = m.lastErr, timePtr(m.errAt)

	s.Faults = faults
	if upOn {
		s.Upload = uploadStatus(up)
	}
	if m.opts.AddLog != nil {
		st := m.opts.AddLog()
		s.AddLog = &st
	}
	if m.opts.Retention != nil {
		s.Retention = retentionStatus(m.opts.Retention())
	}
	if m.opts.PseudonymKeyID != "" {
		s.Privacy = &PrivacyStatus{Pseudonymised: true, KeyID: m.opts.PseudonymKeyID}
	}
	s.Problems = m.problems(now, s)
	s.Health, s.Recording = HealthOK, true
	for _, p := range s.Problems {
		if p.Level == HealthFailing {
			s.Health, s.Recording = HealthFailing, false
		} else if s.Health == HealthOK {
			s.Health = HealthWarning
		}
	}
	return s
}

// streamStatus judges one stream; m.mu must be held.
func (m *Monitor) streamStatus(now time.Time, src source.Stats) StreamStatus {
	st := StreamStatus{
		Name:            src.Stream,
		Connected:       src.Connected,
		Since:           timePtr(src.Since),
		LastError:       src.LastError,
		MessagesTotal:   src.Frames,
		BytesTotal:      src.Bytes,
		LastMessageAt:   timePtr(src.LastFrame),
		ReconnectsTotal: src.Reconnects,
		DroppedTotal:    src.Dropped,
	}
	if tr := m.streams[src.Stream]; tr != nil {
		st.MessagesLastMinute = tr.rate.LastMinute(now)
		st.MessagesLastHour = tr.rate.LastHour(now)
		st.ReconnectsToday = src.Reconnects - tr.dayBase
	}
	if !src.LastFrame.IsZero() {
		age := max(now.Sub(src.LastFrame), 0).Seconds()
		st.LastMessageAgeSeconds = &age
	}
	expiry := src.TokenExpiry
	known := !expiry.IsZero()
	if known {
		st.TokenExpiresAt = &expiry
	}
	// A token made for another topic, or unusable, stops the stream until
	// someone acts: the source says why in its State.
	stopped := src.TokenState == source.TokenWrongTopic || src.TokenState == source.TokenInvalid
	if stopped && st.LastError == "" {
		st.LastError = src.State
	}
	switch {
	case src.TokenState == source.TokenExpired || known && !now.Before(expiry):
		st.State = StateTokenExpired
	case stopped:
		st.State = StateError
	case !src.Connected && !src.Since.IsZero() && now.Sub(src.Since) > m.opts.DownAfter:
		st.State = StateError
	case !src.Connected && src.Connects == 0:
		// Never connected yet: failed dials say why in LastError.
		st.State = StateConnecting
	case !src.Connected:
		st.State = StateReconnecting
	case src.TokenState == source.TokenExpiring || known && expiry.Sub(now) < m.opts.TokenWarn:
		st.State = StateTokenExpiring
	default:
		st.State = StateConnected
	}
	return st
}

// problems lists why health is not ok, failing ones first; m.mu is held.
func (m *Monitor) problems(now time.Time, s Snapshot) []Problem {
	var fail, warn []Problem
	failing := func(format string, args ...any) {
		fail = append(fail, Problem{Level: HealthFailing, Message: fmt.Sprintf(format, args...)})
	}
	warning := func(format string, args ...any) {
		warn = append(warn, Problem{Level: HealthWarning, Message: fmt.Sprintf(format, args...)})
	}
	if m.stalled != "" {
		failing("%s", m.stalled)
	}
	switch {
	case s.Buffer.DiskFull:
		failing("disk full: the disk holding the buffer has no space left; new frames are refused until space is freed on it")
	case s.Buffer.Full:
		failing("buffer full (max_size): new frames are refused until the archive drive takes the buffered hours")
	}
	for _, st := range s.Streams {
		since := ""
		if st.Since != nil {
			since = " for " + humanDuration(now.Sub(*st.Since))
		}
		switch st.State {
		case StateError:
			failing("%s: not connected%s: %s", st.Name, since, st.LastError)
		case StateTokenExpired:
			failing("%s: relay token expired%s", st.Name, expiryText(now, st.TokenExpiresAt))
		case StateReconnecting:
			warning("%s: reconnecting%s: %s", st.Name, since, st.LastError)
		case StateConnecting:
			if st.LastError != "" {
				warning("%s: connecting%s: %s", st.Name, since, st.LastError)
			} else {
				warning("%s: connecting", st.Name)
			}
		case StateTokenExpiring:
			warning("%s: relay token expires%s", st.Name, expiryText(now, st.TokenExpiresAt))
		}
		// A token that cannot work is the stream's state already.
		switch st.Provision {
		case relay.ProvisionHostUnexpected:
			// The local socket may be up, but without a rule nothing comes.
			failing("%s: no relay host rule: the host answers unexpectedly: %s", st.Name, st.ProvisionError)
		case relay.ProvisionHostUnreachable:
			warning("%s: no relay host rule: the host is unreachable: %s", st.Name, st.ProvisionError)
		}
	}
	if s.Buffer.DroppedLastHour > 0 {
		warning("%d frames dropped in the last hour: the writer queue was full", s.Buffer.DroppedLastHour)
	}
	if bufferNearlyFull(s.Buffer) {
		warning("buffer is %s of its %s limit", HumanBytes(s.Buffer.SizeBytes), HumanBytes(s.Buffer.MaxBytes))
	}
	if !s.Archive.Available && s.Archive.CheckedAt != nil {
		warning("archive unavailable, buffering only: %s", s.Archive.Problem)
	}
	if c := s.Archive.LastCompaction; c != nil && !c.OK {
		warning("last compaction failed: %s", c.Error)
	}
	uploadProblems(now, s.Upload, warning)
	for _, f := range s.Faults {
		p := faultProblem(f)
		if p.Level == HealthFailing {
			fail = append(fail, p)
		} else {
			warn = append(warn, p)
		}
	}
	if !s.ClockSynced && s.ClockExpected {
		warning("system clock not synchronised (records are marked clock_synced = false until it is)")
	}
	return append(fail, warn...)
}

// bufferNearlyFull: over 90 % of buffer.max_size, when there is one.
func bufferNearlyFull(b BufferStatus) bool {
	return b.MaxBytes > 0 && b.SizeBytes > b.MaxBytes/10*9
}

// expiryText is " at 2026-11-26 14:03:05 UTC (3h 12m ago)", or "(in 5d
// 2h)", for a known token expiry; "" otherwise. The date alone cannot tell
// an expiry of a minute ago from one of this morning.
func expiryText(now time.Time, t *time.Time) string {
	if t == nil {
		return ""
	}
	when := "in " + humanDuration(t.Sub(now))
	if !now.Before(*t) {
		when = humanDuration(now.Sub(*t)) + " ago"
	}
	return " at " + source.ExpiryTime(*t) + " (" + when + ")"
}
