package status

import (
	"fmt"
	"github.com/practable/lablog/internal/cloud/forward"
	"github.com/practable/lablog/internal/record/addlog"
	"strings"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/ops/relay"
	"github.com/practable/lablog/internal/publish/archive"
)

// The page speaks with one voice: it is rendered here only (its script
// fetches the page again and swaps it in), and every text that judges
// carries the level of the problem it stands for, as the class l-<level>
// in that level's one colour: HealthOK, HealthWarning, HealthFailing, or
// "" for a text that judges nothing. So a text is never redder than the
// headline, and the headline's words (OK, WARNING, FAILING) mean one thing.
// Every time on the page is UTC, and the page says so once.

// pageView is the Snapshot in words, for the template.
type pageView struct {
	Health, Word, Version, Uptime, Updated string
	ClockText, ClockLevel                  string
	Problems                               []Problem
	Faults                                 []faultView
	FaultsLevel                            string // the worst fault's
	Streams                                []streamView
	Rules                                  bool // some stream's relay host rule is kept by lablog
	Buffer                                 struct {
		Size, Waiting, Oldest, Writer, Dropped string
		SizeLevel, WriterLevel, DroppedLevel   string
	}
	Analytics string // the store's counts, "" without one
	Archive   struct {
		Drive, DriveLevel, Free, Today string
		Compaction, CompactionLevel    string
		LastError                      string
	}
	Upload        *uploadView    // nil when upload is off
	Retention     *retentionView // nil when archive.keep_days is 0
	Privacy       string         // "" when user ids are kept as sent
	AddLog        *addLogView    // nil when the /addLog listener is off
	RefreshMillis int64
	Nonce         string // of this answer's Content-Security-Policy
}

type faultView struct {
	Kind, Level, Message, When, Action string
}

type streamView struct {
	Name, State, StateText, Level string
	Min, Hour, Reconnects         int64
	Age                           string
	Rule, RuleText, RuleLevel     string // relay host rule (provisioning)
}

// clockTime and dateTime are how the page writes a time: in UTC.
func clockTime(t time.Time) string { return t.UTC().Format("15:04:05") }
func dateTime(t time.Time) string  { return t.UTC().Format(time.DateTime) }

// streamLevel is a stream state's level, as problems judges it.
func streamLevel(state string) string {
	switch state {
	case StateConnected:
		return HealthOK
	case StateError, StateTokenExpired:
		return HealthFailing
	}
	return HealthWarning
}

// ruleText words a relay.Provision* state for the page, with its level (a
// token that cannot work stops the stream: failing, as its state says).
func ruleText(state string) (text, level string) {
	switch state {
	case "":
		return "not kept by lablog", ""
	case relay.ProvisionRulePosted:
		return "posted", HealthOK
	case relay.ProvisionWaiting:
		return "waiting for the host", ""
	case relay.ProvisionHostUnreachable:
		return "host unreachable", HealthWarning
	case relay.ProvisionHostUnexpected:
		return "host answers unexpectedly", HealthFailing
	case relay.ProvisionTokenExpired:
		return "token expired", HealthFailing
	case relay.ProvisionTokenInvalid:
		return "token unusable", HealthFailing
	}
	return state, ""
}

func (m *Monitor) view(s Snapshot) pageView {
	clock := func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return clockTime(*t)
	}
	ago := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return humanDuration(s.Time.Sub(*t)) + " ago"
	}
	v := pageView{
		Health:        s.Health,
		Word:          strings.ToUpper(s.Health),
		Version:       s.Version,
		Uptime:        humanDuration(time.Duration(s.UptimeSeconds) * time.Second),
		Updated:       clockTime(s.Time),
		Problems:      s.Problems,
		RefreshMillis: m.opts.Refresh.Milliseconds(),
	}
	switch {
	case s.ClockSynced:
		v.ClockText, v.ClockLevel = "synced", HealthOK
	case s.ClockExpected:
		v.ClockText, v.ClockLevel = "NOT synced", HealthWarning
	default:
		v.ClockText = "not synced (not needed here)"
	}
	for _, f := range s.Faults {
		when := "last " + dateTime(f.Last) + " (" + ago(&f.Last) + ")"
		if !f.First.Equal(f.Last) {
			when += ", first " + dateTime(f.First)
		}
		v.Faults = append(v.Faults, faultView{Kind: f.Kind, Level: f.Level, Message: f.Message, When: when, Action: f.Action})
	}
	if len(s.Faults) > 0 {
		v.FaultsLevel = s.Faults[0].Level // failing ones first
	}
	for _, st := range s.Streams {
		v.Rules = v.Rules || st.Provision != ""
		sv := streamView{Name: st.Name, State: st.State, Level: streamLevel(st.State), Min: st.MessagesLastMinute,
			Hour: st.MessagesLastHour, Reconnects: st.ReconnectsToday, Age: "never", Rule: st.Provision}
		sv.RuleText, sv.RuleLevel = ruleText(st.Provision)
		if st.LastMessageAgeSeconds != nil {
			sv.Age = humanDuration(time.Duration(*st.LastMessageAgeSeconds*float64(time.Second))) + " ago"
		}
		switch st.State {
		case StateReconnecting:
			sv.StateText = "reconnecting since " + clock(st.Since) + " (" + ago(st.Since) + ")"
		case StateError:
			msg := st.LastError
			if msg == "" {
				msg = "not connected"
			}
			sv.StateText = "error: " + msg + " (since " + clock(st.Since) + ")"
		case StateTokenExpiring:
			sv.StateText = "token expiring" + expiryText(s.Time, st.TokenExpiresAt)
		case StateTokenExpired:
			sv.StateText = "token expired" + expiryText(s.Time, st.TokenExpiresAt)
		default:
			sv.StateText = st.State
		}
		v.Streams = append(v.Streams, sv)
	}
	b := s.Buffer
	v.Buffer.Size = HumanBytes(b.SizeBytes)
	if b.MaxBytes > 0 {
		v.Buffer.Size += " of " + HumanBytes(b.MaxBytes)
		if bufferNearlyFull(b) {
			v.Buffer.SizeLevel = HealthWarning
		}
	}
	if b.Full {
		v.Buffer.SizeLevel = HealthFailing
	}
	v.Buffer.Waiting = fmt.Sprint(b.RecordsWaiting)
	v.Buffer.Oldest = "–"
	if b.OldestWaiting != nil {
		v.Buffer.Oldest = b.OldestWaiting.UTC().Format("2006-01-02 15:04 UTC")
	}
	v.Buffer.Writer = fmt.Sprintf("ok, queue %d of %d", b.QueueDepth, b.QueueCapacity)
	if b.WriterStalled {
		v.Buffer.Writer, v.Buffer.WriterLevel = "STALLED", HealthFailing
		if b.WriterError != "" {
			v.Buffer.Writer += ": " + b.WriterError
		}
	}
	v.Buffer.Dropped = fmt.Sprintf("%d (%d in the last hour)", b.DroppedTotal, b.DroppedLastHour)
	if b.DroppedLastHour > 0 {
		v.Buffer.DroppedLevel = HealthWarning
	}
	if c := s.Analytics; c != nil {
		v.Analytics = analyticsText(*c)
	}

	a := s.Archive
	v.Archive.Drive, v.Archive.DriveLevel = driveText(a)
	v.Archive.Free = "–"
	if a.FreeBytes != nil {
		v.Archive.Free = HumanBytes(int64(*a.FreeBytes))
	}
	v.Archive.Today = fmt.Sprintf("%d files, %s", a.FilesToday, HumanBytes(a.BytesToday))
	v.Archive.Compaction = "not yet"
	if c := a.LastCompaction; c != nil {
		v.Archive.Compaction = clock(&c.FinishedAt) + " (" + ago(&c.FinishedAt) + "): "
		if c.OK {
			v.Archive.Compaction += fmt.Sprintf("ok, %d files, %s", c.Files, HumanBytes(c.Bytes))
		} else {
			v.Archive.Compaction += "failed: " + c.Error
			v.Archive.CompactionLevel = HealthWarning
		}
	}
	v.Archive.LastError = "none"
	if a.LastError != "" {
		v.Archive.LastError = a.LastError + " (" + ago(a.LastErrorAt) + ")"
	}
	v.Upload = viewUpload(s.Time, s.Upload, ago)
	v.Retention = viewRetention(s.Retention, ago)
	if s.Privacy != nil {
		v.Privacy = "pseudonymised at ingest, key " + s.Privacy.KeyID
	}
	v.AddLog = viewAddLog(s.AddLog, s.Time, ago)
	return v
}

// addLogView is the /addLog listener in words, for the page.
type addLogView struct {
	Total, Last, Refused, RefusedLevel string
	Kinds                              []string // "spinner: 120 clicked, 3 changed"
	Forward, ForwardLevel              string   // "" when forwarding is off
}

func viewAddLog(a *addlog.Stats, now time.Time, ago func(*time.Time) string) *addLogView {
	if a == nil {
		return nil
	}
	v := &addLogView{Total: fmt.Sprintf("%d statements since start", a.Total), Last: "none yet"}
	if a.LastStatement != nil {
		v.Last = clockTime(*a.LastStatement) + " (" + ago(a.LastStatement) + ")"
	}
	v.Refused = fmt.Sprintf("%d unauthorized, %d too large, %d rate-limited, %d refused (buffer)",
		a.Unauthorized, a.TooLarge, a.RateLimited, a.Refused)
	if a.Refused > 0 {
		v.RefusedLevel = HealthWarning // statements the UIs could not hand over
	}
	var line string
	var hw string
	for _, c := range a.Statements {
		if c.Hardware != hw {
			if line != "" {
				v.Kinds = append(v.Kinds, line)
			}
			hw, line = c.Hardware, c.Hardware+":"
		} else {
			line += ","
		}
		verb := c.Verb
		if verb == "" {
			verb = "(no verb)"
		}
		line += fmt.Sprintf(" %d %s", c.Count, verb)
	}
	if line != "" {
		v.Kinds = append(v.Kinds, line)
	}
	if f := a.Forward; f != nil {
		v.Forward, v.ForwardLevel = forwardText(*f, now, ago)
	}
	return v
}

// forwardText is store and forward in words: where to, how far behind, and
// the last error while it is failing.
func forwardText(f forward.Stats, now time.Time, ago func(*time.Time) string) (text, level string) {
	text = fmt.Sprintf("to %s: %d forwarded (%d from the archive), %d waiting", f.URL, f.Forwarded, f.FromArchive, f.Pending)
	level = HealthOK
	if lag := f.Lag(now); lag > 0 {
		text += fmt.Sprintf(", the oldest for %s", lag.Round(time.Second))
	}
	if f.Skipped > 0 {
		text += fmt.Sprintf(", %d lost (damaged)", f.Skipped)
		level = HealthWarning
	}
	if f.LastError != "" && (f.LastForwarded == nil || f.LastErrorAt.After(*f.LastForwarded)) {
		text += "; failing: " + f.LastError + " (" + ago(f.LastErrorAt) + ")"
		level = HealthWarning
	}
	return text, level
}

// driveText says what is true of the archive's drive: with archive.require
// none no drive is required, so a folder is all there is to say.
func driveText(a ArchiveStatus) (text, level string) {
	switch {
	case a.CheckedAt == nil:
		return "not checked yet", ""
	case !a.Available:
		return "NOT available: " + a.Problem, HealthWarning
	case a.Require == archive.RequireNone:
		return "no drive required (archive.require: none): writing to the folder " + a.Path, ""
	}
	return "mounted at " + a.Path, HealthOK
}

// analyticsText is the store's counts in words.
func analyticsText(c analytics.Counts) string {
	return fmt.Sprintf("%d student graphs, %d commands, %d to export", c.Graphs, c.Commands, c.Due)
}

// uploadView is the upload in words, for the page.
type uploadView struct {
	Target, State, StateLevel, Waiting, WaitingLevel, Done, Rate, LastError string
}

func viewUpload(now time.Time, u *UploadStatus, ago func(*time.Time) string) *uploadView {
	if u == nil {
		return nil
	}
	v := &uploadView{Target: u.Target + " at " + u.Endpoint, State: uploadStateText(u), Waiting: u.waitingText(),
		Rate: HumanBytes(int64(u.BytesPerSecond)) + "/s over the last minute", LastError: "none"}
	// As uploadProblems judges: warnings, never failing.
	if u.Failures > 0 || u.waitingForClock() {
		v.StateLevel = HealthWarning
	}
	if u.lagging(now) {
		v.WaitingLevel = HealthWarning
	}
	v.Done = fmt.Sprintf("%d files, %s since start", u.FilesUploaded, HumanBytes(u.BytesUploaded))
	if u.FilesFound > 0 {
		v.Done += fmt.Sprintf(" (and %d found there already)", u.FilesFound)
	}
	if u.Conflicts > 0 {
		v.Waiting += fmt.Sprintf("; %d conflicting (see Faults)", u.Conflicts)
		v.WaitingLevel = HealthWarning
	}
	if u.LastError != "" {
		v.LastError = u.LastError + " (" + ago(u.LastErrorAt) + ")"
	}
	return v
}

// uploadStateText words an upload's state.
func uploadStateText(u *UploadStatus) string {
	switch u.State {
	case upload.StateIdle:
		return "everything uploaded"
	case upload.StateUploading:
		return "uploading"
	case upload.StateRetrying:
		return fmt.Sprintf("retrying with backoff after %d failed %s", u.Failures, plural(int64(u.Failures), "attempt", "attempts"))
	case upload.StateWaitingForClock:
		return "waiting for the clock to be synchronised"
	case upload.StateArchiveUnavailable:
		return "archive unavailable: " + u.ArchiveProblem
	case upload.StateNoCredentials:
		return "off: the credentials file cannot be used"
	}
	return u.State
}
