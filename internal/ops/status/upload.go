package status

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/practable/lablog/internal/cloud/upload"
)

// UploadStatus is the shipping of archive files to a bucket (upload:),
// null in /api/status when it is off. It names the endpoint and bucket,
// never a credential.
type UploadStatus struct {
	State    string `json:"state"` // starting, idle, uploading, retrying, waiting_for_clock, archive_unavailable, no_credentials
	Endpoint string `json:"endpoint"`
	Target   string `json:"target"` // s3://bucket/prefix/site=<site>/
	// Published files not uploaded yet (conflicts included), their bytes,
	// and the hour of the oldest: the upload lag.
	FilesWaiting  int        `json:"files_waiting"`
	BytesWaiting  int64      `json:"bytes_waiting"`
	OldestWaiting *time.Time `json:"oldest_waiting"`
	Conflicts     int        `json:"conflicts"`
	// Since start.
	FilesUploaded  int64      `json:"files_uploaded_total"`
	FilesFound     int64      `json:"files_found_total"` // in the bucket already, same checksum
	BytesUploaded  int64      `json:"bytes_uploaded_total"`
	FilesDeleted   int64      `json:"files_deleted_total"` // by retention (delete_after_upload)
	LastUploadAt   *time.Time `json:"last_upload_at"`
	BytesPerSecond float64    `json:"bytes_per_second"` // over the last minute
	LastError      string     `json:"last_error"`       // kept after recovery
	LastErrorAt    *time.Time `json:"last_error_at"`
	Failures       int        `json:"failures"` // failed attempts since the last success
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LedgerError    string     `json:"ledger_error"`
	ArchiveProblem string     `json:"archive_problem"`
}

// uploadLagWarn: a file still waiting this long after its hour ended is
// worth a look even without an error (a slow link, a stuck clock).
const uploadLagWarn = 3 * time.Hour

func uploadStatus(st upload.Stats) *UploadStatus {
	return &UploadStatus{
		State: st.State, Endpoint: st.Endpoint, Target: st.Target,
		FilesWaiting: st.FilesWaiting, BytesWaiting: st.BytesWaiting, OldestWaiting: timePtr(st.OldestWaiting),
		Conflicts: st.Conflicts, FilesUploaded: st.FilesUploaded, FilesFound: st.FilesFound, BytesUploaded: st.BytesUploaded,
		FilesDeleted: st.FilesDeleted, LastUploadAt: timePtr(st.LastUploadAt), BytesPerSecond: st.BytesPerSecond,
		LastError: st.LastError, LastErrorAt: timePtr(st.LastErrorAt), Failures: st.Failures,
		NextAttemptAt: timePtr(st.NextAttemptAt), LedgerError: st.LedgerError, ArchiveProblem: st.ArchiveProblem,
	}
}

// waitingText is "3 files (1.2 MiB) waiting, the oldest from 2026-11-26 14:00 UTC".
func (u *UploadStatus) waitingText() string {
	s := fmt.Sprintf("%d %s (%s) waiting", u.FilesWaiting, plural(int64(u.FilesWaiting), "file", "files"), HumanBytes(u.BytesWaiting))
	if u.OldestWaiting != nil {
		s += ", the oldest from " + u.OldestWaiting.UTC().Format("2006-01-02 15:04 UTC")
	}
	return s
}

// waitingForClock: files wait for the clock, not for a retry.
func (u *UploadStatus) waitingForClock() bool {
	return u.State == upload.StateWaitingForClock && u.FilesWaiting > 0
}

// lagging: the oldest waiting file's hour ended more than uploadLagWarn ago.
func (u *UploadStatus) lagging(now time.Time) bool {
	return u.OldestWaiting != nil && now.Sub(u.OldestWaiting.Add(time.Hour)) > uploadLagWarn
}

// uploadProblems are the upload's warnings: it never stops recording, so
// none is failing (a conflict is a fault, shown with the others).
func uploadProblems(now time.Time, u *UploadStatus, warning func(format string, args ...any)) {
	if u == nil {
		return
	}
	switch {
	case u.Failures > 0:
		warning("upload failing (%d %s): %s; %s", u.Failures, plural(int64(u.Failures), "attempt", "attempts"), u.LastError, u.waitingText())
	case u.waitingForClock():
		warning("upload waiting for the system clock to be synchronised: %s", u.waitingText())
	case u.lagging(now):
		warning("upload lagging: %s", u.waitingText())
	}
	if u.LedgerError != "" {
		warning("upload: the archive drive did not take the record of uploaded files (kept in memory until restart): %s", u.LedgerError)
	}
}

var (
	descUpWaiting = prometheus.NewDesc("lablog_upload_files_waiting",
		"Published archive files not uploaded yet.", nil, nil)
	descUpWaitingBytes = prometheus.NewDesc("lablog_upload_bytes_waiting",
		"Bytes of the published archive files not uploaded yet.", nil, nil)
	descUpOldest = prometheus.NewDesc("lablog_upload_oldest_waiting_timestamp_seconds",
		"Hour (Unix time) of the oldest file not uploaded; absent when none waits.", nil, nil)
	descUpFiles = prometheus.NewDesc("lablog_upload_files_total",
		"Files settled since start: uploaded, or found in the bucket already with the same checksum.", []string{"result"}, nil)
	descUpBytes = prometheus.NewDesc("lablog_upload_bytes_total",
		"Bytes uploaded since start.", nil, nil)
	descUpFailures = prometheus.NewDesc("lablog_upload_failures",
		"Failed upload attempts since the last success (0 when uploads work).", nil, nil)
	descUpConflicts = prometheus.NewDesc("lablog_upload_conflicts",
		"Files whose key holds an object with other content in the bucket.", nil, nil)
	descUpLast = prometheus.NewDesc("lablog_upload_last_success_timestamp_seconds",
		"When a file was last settled (Unix time); absent before the first.", nil, nil)
)

var uploadDescs = []*prometheus.Desc{descUpWaiting, descUpWaitingBytes, descUpOldest, descUpFiles, descUpBytes,
	descUpFailures, descUpConflicts, descUpLast}

func collectUpload(ch chan<- prometheus.Metric, u *UploadStatus) {
	if u == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descUpWaiting, float64(u.FilesWaiting))
	gauge(descUpWaitingBytes, float64(u.BytesWaiting))
	if u.OldestWaiting != nil {
		gauge(descUpOldest, float64(u.OldestWaiting.Unix()))
	}
	counter(descUpFiles, float64(u.FilesUploaded), "uploaded")
	counter(descUpFiles, float64(u.FilesFound), "found")
	counter(descUpBytes, float64(u.BytesUploaded))
	gauge(descUpFailures, float64(u.Failures))
	gauge(descUpConflicts, float64(u.Conflicts))
	if u.LastUploadAt != nil {
		gauge(descUpLast, float64(u.LastUploadAt.Unix()))
	}
}
