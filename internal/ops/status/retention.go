package status

import (
	"fmt"

	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/practable/lablog/internal/publish/retention"
)

// PrivacyStatus says that user ids are pseudonymised at ingest, and with
// which key (its id, never the key), so a changed key is seen; null in
// /api/status when they are not.
type PrivacyStatus struct {
	Pseudonymised bool   `json:"pseudonymised"`
	KeyID         string `json:"key_id"`
}

// RetentionStatus is the removal of old files from the archive drive
// (archive.keep_days), null in /api/status when keep_days is 0.
type RetentionStatus struct {
	KeepDays int `json:"keep_days"`
	// Since start: files removed from the drive and their bytes.
	FilesRemoved int64 `json:"files_removed_total"`
	BytesRemoved int64 `json:"bytes_removed_total"`
	// The hour of the oldest file left on the drive, and how many are left.
	OldestKept *time.Time `json:"oldest_kept"`
	FilesKept  int        `json:"files_kept"`
	// Files past keep_days kept because they are not in the bucket yet.
	Held        int        `json:"held_for_upload"`
	LastSweepAt *time.Time `json:"last_sweep_at"`
	LastError   string     `json:"last_error"`
}

func retentionStatus(st retention.Stats) *RetentionStatus {
	return &RetentionStatus{KeepDays: st.KeepDays, FilesRemoved: st.FilesRemoved, BytesRemoved: st.BytesRemoved,
		OldestKept: timePtr(st.OldestKept), FilesKept: st.FilesKept, Held: st.Held,
		LastSweepAt: timePtr(st.LastSweepAt), LastError: st.LastError}
}

// retentionView is the retention in words, for the page.
type retentionView struct {
	Rule, Removed, Kept, LastError, Level string
}

func viewRetention(r *RetentionStatus, ago func(*time.Time) string) *retentionView {
	if r == nil {
		return nil
	}
	v := &retentionView{Rule: fmt.Sprintf("files are removed from the drive %d %s after their hour", r.KeepDays, plural(int64(r.KeepDays), "day", "days")),
		Removed: fmt.Sprintf("%d %s (%s) since start", r.FilesRemoved, plural(r.FilesRemoved, "file", "files"), HumanBytes(r.BytesRemoved)),
		Kept:    fmt.Sprintf("%d %s", r.FilesKept, plural(int64(r.FilesKept), "file", "files")), LastError: "none"}
	if r.OldestKept != nil {
		v.Kept += ", the oldest from " + r.OldestKept.UTC().Format("2006-01-02 15:04 UTC")
	}
	if r.Held > 0 {
		v.Kept += fmt.Sprintf("; %d past keep_days held until uploaded", r.Held)
	}
	if r.LastError != "" {
		v.LastError = r.LastError + " (" + ago(r.LastSweepAt) + ")"
		v.Level = HealthWarning
	}
	return v
}

var (
	descRetRemoved = prometheus.NewDesc("lablog_retention_files_removed_total",
		"Archive files removed from the drive by archive.keep_days since start.", nil, nil)
	descRetRemovedBytes = prometheus.NewDesc("lablog_retention_bytes_removed_total",
		"Bytes of the archive files removed by archive.keep_days since start.", nil, nil)
	descRetOldest = prometheus.NewDesc("lablog_retention_oldest_kept_timestamp_seconds",
		"Hour of the oldest archive file left on the drive.", nil, nil)
	descRetHeld = prometheus.NewDesc("lablog_retention_files_held",
		"Archive files past archive.keep_days kept because they are not uploaded yet.", nil, nil)
)

var retentionDescs = []*prometheus.Desc{descRetRemoved, descRetRemovedBytes, descRetOldest, descRetHeld}

func collectRetention(ch chan<- prometheus.Metric, r *RetentionStatus) {
	if r == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descRetRemoved, prometheus.CounterValue, float64(r.FilesRemoved))
	ch <- prometheus.MustNewConstMetric(descRetRemovedBytes, prometheus.CounterValue, float64(r.BytesRemoved))
	if r.OldestKept != nil {
		ch <- prometheus.MustNewConstMetric(descRetOldest, prometheus.GaugeValue, float64(r.OldestKept.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(descRetHeld, prometheus.GaugeValue, float64(r.Held))
}
