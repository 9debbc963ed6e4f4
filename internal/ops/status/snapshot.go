package status

import (
	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/record/addlog"

	"time"
)

// Snapshot is everything the status page shows, and the body of
// GET /api/status. Field names are a public API: add fields, never rename.
// It holds counts and states only: no tokens, no URLs with codes, no user ids.
type Snapshot struct {
	Health        string    `json:"health"`    // ok, warning or failing
	Recording     bool      `json:"recording"` // false exactly when /healthz answers 503
	Problems      []Problem `json:"problems"`  // why health is not ok, worst first
	Time          time.Time `json:"time"`
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	ClockSynced   bool      `json:"clock_synced"`
	// ClockExpected: an unsynced clock is a warning (false in the demo).
	ClockExpected bool `json:"clock_sync_expected"`

	Streams []StreamStatus `json:"streams"`
	Buffer  BufferStatus   `json:"buffer"`
	Archive ArchiveStatus  `json:"archive"`
	// Analytics counts the live learning-analytics store's graphs (counts
	// only, never user ids); null when the pipeline keeps none.
	Analytics *analytics.Counts `json:"analytics"`
	// Faults are the active faults (see FaultStatus), failing ones first;
	// each is also a problem.
	Faults []FaultStatus `json:"faults"`
	// Upload is the shipping of archive files to a bucket; null when off.
	Upload *UploadStatus `json:"upload"`
	// Retention is the removal of old files from the drive; null when
	// archive.keep_days is 0.
	Retention *RetentionStatus `json:"retention"`
	// Privacy: null when user ids are kept as sent.
	Privacy *PrivacyStatus `json:"privacy"`
	// AddLog counts the statements today's UIs posted to /addLog, and the
	// calls refused (never a user id or a credential); null when off.
	AddLog *addlog.Stats `json:"addlog"`
}

// Health levels, mildest first.
const (
	HealthOK      = "ok"
	HealthWarning = "warning" // recording, but something needs a look
	HealthFailing = "failing" // something is not being recorded
)

// Problem is one reason health is not ok.
type Problem struct {
	Level   string `json:"level"` // warning or failing
	Message string `json:"message"`
}

// Stream states.
const (
	StateConnected     = "connected"
	StateConnecting    = "connecting"   // never connected yet, no error so far
	StateReconnecting  = "reconnecting" // lost or refused, retrying, for less than DownAfter
	StateError         = "error"        // not connected for longer than DownAfter
	StateTokenExpiring = "token_expiring"
	StateTokenExpired  = "token_expired"
)

// StreamStatus is one stream.
type StreamStatus struct {
	Name                  string     `json:"name"`
	State                 string     `json:"state"`
	Connected             bool       `json:"connected"`
	Since                 *time.Time `json:"since"` // of the last connect or disconnect
	LastError             string     `json:"last_error"`
	MessagesLastMinute    int64      `json:"messages_last_minute"`
	MessagesLastHour      int64      `json:"messages_last_hour"`
	MessagesTotal         int64      `json:"messages_total"` // websocket messages (frames) since start
	BytesTotal            int64      `json:"bytes_total"`
	LastMessageAt         *time.Time `json:"last_message_at"`
	LastMessageAgeSeconds *float64   `json:"last_message_age_seconds"`
	ReconnectsToday       int64      `json:"reconnects_today"`
	ReconnectsTotal       int64      `json:"reconnects_total"`
	DroppedTotal          int64      `json:"dropped_total"`
	TokenExpiresAt        *time.Time `json:"token_expires_at"`
	// Provision is how the stream's relay host rule stands when lablog
	// keeps it (relay.Provision*: rule_posted, host_unreachable, ...); ""
	// for a stream whose rules lablog does not keep. ProvisionError says
	// why there is no rule.
	Provision      string `json:"provision"`
	ProvisionError string `json:"provision_error"`
}

// BufferStatus is the bbolt buffer on the SD card and its writer.
type BufferStatus struct {
	SizeBytes       int64      `json:"size_bytes"`
	MaxBytes        int64      `json:"max_bytes"`
	RecordsWaiting  int64      `json:"records_waiting"` // committed, not yet archived
	OldestWaiting   *time.Time `json:"oldest_waiting"`  // hour of the oldest waiting record
	QueueDepth      int        `json:"queue_depth"`
	QueueCapacity   int        `json:"queue_capacity"`
	DroppedTotal    int64      `json:"dropped_total"` // frames lost to a full queue since start
	DroppedLastHour int64      `json:"dropped_last_hour"`
	CommittedTotal  int64      `json:"committed_total"`
	LastCommitAt    *time.Time `json:"last_commit_at"`
	WriterStalled   bool       `json:"writer_stalled"`
	Full            bool       `json:"full"`          // at max_size or a full disk: new frames are refused
	DiskFull        bool       `json:"disk_full"`     // of full: the disk holding the buffer is full
	RefusedTotal    int64      `json:"refused_total"` // of dropped_total, refused because the buffer was full
	WriterError     string     `json:"writer_error"`
	// CommitMs is the latency of the last few thousand commits; null before the first.
	CommitMs *CommitLatency `json:"commit_ms"`
}

// ArchiveStatus is the Parquet archive on the USB drive.
type ArchiveStatus struct {
	Path           string            `json:"path"`
	Require        string            `json:"require"`   // archive.require: marker, mountpoint or none (no drive required)
	Available      bool              `json:"available"` // mounted and writable (per archive.require)
	Problem        string            `json:"problem"`   // why not, when not
	CheckedAt      *time.Time        `json:"checked_at"`
	FreeBytes      *uint64           `json:"free_bytes"`
	FilesToday     int               `json:"files_today"` // in today's (UTC) date partitions
	BytesToday     int64             `json:"bytes_today"`
	LastCompaction *CompactionStatus `json:"last_compaction"`
	LastError      string            `json:"last_error"` // the latest archive or compaction error, kept after recovery
	LastErrorAt    *time.Time        `json:"last_error_at"`
}

// CompactionStatus is one compaction run.
type CompactionStatus struct {
	StartedAt       time.Time `json:"started_at"`
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	OK              bool      `json:"ok"`
	Error           string    `json:"error"`
	Files           int       `json:"files"`
	Records         int       `json:"records"`
	Bytes           int64     `json:"bytes"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
