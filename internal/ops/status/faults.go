package status

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/platform/logkey"
)

// refusingFor is how long after frames were last refused the fault counts as
// FAILING (frames are being lost now). After that it is a WARNING, like the
// other faults, until acknowledged or expired: the data is gone, recording
// goes on, /healthz answers 200 again.
const refusingFor = time.Minute

// FaultStatus is one active fault (see package fault): not acknowledged, and
// last seen less than 24 hours ago.
type FaultStatus struct {
	Kind    string    `json:"kind"`    // buffer_quarantined, records_set_aside, frames_refused, identity_conflict
	Level   string    `json:"level"`   // warning or failing, as in problems
	Message string    `json:"message"` // what happened, in words
	Action  string    `json:"action"`  // what to do about it
	Detail  string    `json:"detail"`  // the latest report's (the quarantined file, ...)
	Count   int64     `json:"count"`   // total reported (times, records or frames)
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// faultLevel: frames being refused is data being lost, so FAILING while it
// goes on; every other fault is a WARNING: something was set aside and
// recording goes on, but a person must look.
func faultLevel(now time.Time, f fault.Fault) string {
	if f.Kind == fault.FramesRefused && now.Sub(f.Last) < refusingFor {
		return HealthFailing
	}
	return HealthWarning
}

// faultWords says what happened and what to do, for the page and the API.
func faultWords(f fault.Fault) (message, action string) {
	times := ""
	if f.Count > 1 {
		times = fmt.Sprintf(" (%d times)", f.Count)
	}
	detail := func(format string) string {
		if f.Detail == "" {
			return ""
		}
		return fmt.Sprintf(format, f.Detail)
	}
	switch f.Kind {
	case fault.BufferQuarantined:
		return "The buffer file was corrupt and was set aside" + times,
			"The damaged file was kept" + detail(" at %s") + " for inspection; recording continued on a fresh buffer. " +
				"Records in it not yet archived are not in the archive: copy the file off before deleting it to free the SD card."
	case fault.RecordsSetAside:
		return fmt.Sprintf("%d damaged %s found in the buffer at compaction and set aside, not archived", f.Count, plural(f.Count, "record", "records")),
			"Their raw bytes were kept" + detail(" (%s)") + " and the rest of the data was archived. " +
				"Damage in the buffer often means a failing SD card: check it and plan to replace it."
	case fault.FramesRefused:
		return fmt.Sprintf("%d %s refused: the buffer was full", f.Count, plural(f.Count, "frame was", "frames were")),
			"Frames are lost while the buffer is full. Make sure the archive drive is available so compaction can empty " +
				"the buffer (see Archive); if it happens again, raise buffer.max_size. When the disk holding the buffer is full, " +
				"free space on it: frames are taken again within seconds." + detail(" Latest: %s.")
	case fault.UploadConflict:
		return "An object in the upload bucket has an archive file's name but other content" + times,
			"Nothing was overwritten and the file stays waiting. Compare the object" + detail(" (%s)") +
				" with the local file; remove the wrong one from the bucket and lablog uploads the file at its next look."
	case fault.UpdateRolledBack:
		return "An update failed its health check and was rolled back" + times,
			"This lablog is the version that ran before the update. " + detail("%s. ") +
				"Fix the package or the configuration it disliked before trying it again (docs/updates.md)."
	case fault.UpdateRefused:
		return "An update was refused and not installed" + times,
			detail("%s. ") + "Sign the package with a key this machine trusts (lablog update sign) and put both files back (docs/updates.md)."
	case fault.IdentityConflict:
		return "An archive file has the same identity as records being archived but different content" + times,
			"Nothing was overwritten. Compare" + detail(" %s") + " with what the log says before deleting anything."
	}
	return fmt.Sprintf("Fault %q%s", f.Kind, times), "See lablog's log." + detail(" Latest: %s.")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// faultStatuses turns the store's active faults into the snapshot's, failing
// ones first, then the most recent. Never nil: the API shows [].
func faultStatuses(now time.Time, active []fault.Fault) []FaultStatus {
	out := make([]FaultStatus, 0, len(active))
	for _, f := range active {
		msg, action := faultWords(f)
		out = append(out, FaultStatus{Kind: string(f.Kind), Level: faultLevel(now, f), Message: msg, Action: action,
			Detail: f.Detail, Count: f.Count, First: f.First, Last: f.Last})
	}
	slices.SortStableFunc(out, func(a, b FaultStatus) int {
		return b2i(b.Level == HealthFailing) - b2i(a.Level == HealthFailing)
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// faultProblem is an active fault as a reason in problems and /healthz: it
// names the kind, so a probe's log says which.
func faultProblem(f FaultStatus) Problem {
	msg := f.Kind + ": " + f.Message
	if f.Detail != "" {
		msg += " (" + f.Detail + ")"
	}
	return Problem{Level: f.Level, Message: msg}
}

// serveFaultAck acknowledges every fault reported so far and answers the
// faults still active (reported since, by another goroutine) as
// {"faults": [...]}, the shape of /api/status's field.
func (m *Monitor) serveFaultAck(w http.ResponseWriter, r *http.Request) {
	err := m.p.AckFaults(m.opts.Now())
	if err != nil {
		m.opts.Logger.Error("faults acknowledged but not saved: they show again after a restart", logkey.Err, err)
		http.Error(w, "faults acknowledged but not saved (they show again after a restart): "+err.Error(),
			http.StatusInternalServerError)
		return
	}
	body, err := json.MarshalIndent(struct {
		Faults []FaultStatus `json:"faults"`
	}{m.Snapshot().Faults}, "", "  ")
	if err != nil {
		http.Error(w, "faults: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

var (
	descFaultsActive = prometheus.NewDesc("lablog_faults_active",
		"1 while a fault of the kind is active (not acknowledged, last seen within 24 h); see /api/status faults.", []string{"kind"}, nil)
	descFaultEvents = prometheus.NewDesc("lablog_fault_events_total",
		"Faults of the kind reported, counted as the fault counts them (quarantines, records, frames); kept in faults.json across restarts.",
		[]string{"kind"}, nil)
)

// collectFaults gives both fault metrics for every known kind, 0 when none,
// so an alert rule need not handle a missing series.
func collectFaults(ch chan<- prometheus.Metric, s Snapshot, counts map[fault.Kind]int64) {
	kinds := slices.Clone(fault.Kinds)
	for k := range counts {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	for _, f := range s.Faults {
		if !slices.Contains(kinds, fault.Kind(f.Kind)) {
			kinds = append(kinds, fault.Kind(f.Kind))
		}
	}
	for _, k := range kinds {
		active := slices.ContainsFunc(s.Faults, func(f FaultStatus) bool { return f.Kind == string(k) })
		ch <- prometheus.MustNewConstMetric(descFaultsActive, prometheus.GaugeValue, b2f(active), string(k))
		ch <- prometheus.MustNewConstMetric(descFaultEvents, prometheus.CounterValue, float64(counts[k]), string(k))
	}
}
