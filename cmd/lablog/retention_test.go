package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/s3test"
	"github.com/practable/lablog/internal/testing/testkit"
)

// publishAt writes a real archive file of stream for hour under root.
func publishAt(t *testing.T, root, stream string, hour time.Time, seq uint64) string {
	t.Helper()
	w, err := archive.Create(root, stream, hour, archive.Options{BufferID: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	rec := frame.Record{Stream: stream, Received: hour.Add(time.Minute), Kind: frame.Text, Data: []byte(`{"user":"u","t":1}`)}
	if err := w.Add(archive.Entry{Seq: seq, Rec: rec}); err != nil {
		t.Fatal(err)
	}
	path, err := w.Publish()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// lablog run with archive.keep_days removes the drive's old files at
// start and shows it on the page, in /api/status and in /metrics.
func TestRetentionInTheDaemon(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	old := []string{publishAt(t, root, "spin30", now.AddDate(0, 0, -40), 1), publishAt(t, root, "spin31", now.AddDate(0, 0, -8), 2)}
	keep := publishAt(t, root, "spin30", now.AddDate(0, 0, -6), 3)
	host := newTestHost(t)
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := "buffer: {path: " + filepath.Join(dir, "buffer.db") + "}\narchive: {path: " + root + ", require: none, keep_days: 7}\n" +
		"status: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\nstreams:\n  - {name: spin30, relay_host: " + host.URL() + "}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, logs := startDaemon(t, cfgPath, `msg="status page"`)
	m := statusURL.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no status address in the log:\n%s", logs)
	}
	d := &daemon{url: m[1]}
	var st status.Snapshot
	testkit.Eventually(t, 10*time.Second, "the first sweep in /api/status", func() bool {
		st = d.status(t)
		return st.Retention != nil && st.Retention.LastSweepAt != nil
	})
	r := st.Retention
	if r.KeepDays != 7 || r.FilesRemoved != 2 || r.FilesKept != 1 || r.OldestKept == nil || !r.OldestKept.Equal(now.AddDate(0, 0, -6)) || r.LastError != "" {
		t.Errorf("retention status %+v", r)
	}
	for _, p := range old {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s older than keep_days kept: %v", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("%s within keep_days removed: %v", keep, err)
	}
	_, page := d.get(t, "/")
	for _, want := range []string{"Retention", "removed from the drive 7 days after their hour", "2 files (", "1 file, the oldest from " + now.AddDate(0, 0, -6).Format("2006-01-02 15:04 UTC")} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	fams := scrapeMetrics(t, d)
	if v := metricValue(fams, "lablog_retention_files_removed_total", ""); v != 2 {
		t.Errorf("lablog_retention_files_removed_total = %v", v)
	}
	if v := metricValue(fams, "lablog_retention_oldest_kept_timestamp_seconds", ""); v != float64(now.AddDate(0, 0, -6).Unix()) {
		t.Errorf("lablog_retention_oldest_kept_timestamp_seconds = %v", v)
	}
	if !strings.Contains(logs.String(), "retention: removed files older than keep_days") {
		t.Errorf("the removal is not logged:\n%s", logs)
	}
}

// With upload on, a file past keep_days stays on the drive, held, until
// the bucket (a real S3 server) has it; then it goes.
func TestRetentionWaitsForTheUpload(t *testing.T) {
	srv := s3test.Start(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	old := []string{publishAt(t, root, "spin30", now.AddDate(0, 0, -40), 1), publishAt(t, root, "spin31", now.AddDate(0, 0, -8), 2)}
	host := newTestHost(t)
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := "buffer: {path: " + filepath.Join(dir, "buffer.db") + "}\narchive: {path: " + root + ", require: none, keep_days: 7}\n" +
		"status: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n" + uploadSection(t, dir, srv, "lab", "bristol") +
		"streams:\n  - {name: spin30, relay_host: " + host.URL() + "}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, logs := startDaemon(t, cfgPath, `msg="status page"`)
	m := statusURL.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no status address in the log:\n%s", logs)
	}
	d := &daemon{url: m[1]}
	// The bucket does not exist yet: every upload fails, nothing goes.
	var st status.Snapshot
	testkit.Eventually(t, 20*time.Second, "both old files held and an upload failed", func() bool {
		st = d.status(t)
		return st.Retention != nil && st.Retention.Held == 2 && st.Upload != nil && st.Upload.Failures > 0
	})
	if st.Retention.FilesRemoved != 0 {
		t.Fatalf("removed before upload: %+v", st.Retention)
	}
	for _, p := range old {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s removed before it was uploaded: %v", p, err)
		}
	}
	srv.Bucket(t, "lab")
	testkit.Eventually(t, 30*time.Second, "the old files uploaded, then removed", func() bool {
		st = d.status(t)
		return st.Retention.FilesRemoved == 2 && st.Retention.Held == 0
	})
	for _, p := range old {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s kept after upload: %v", p, err)
		}
	}
	// The bucket has them (and the hours the daemon archived itself).
	keys := map[string]bool{}
	for _, o := range srv.List(t, "lab") {
		keys[o.Key] = true
	}
	for _, p := range old {
		rel, _ := filepath.Rel(root, p)
		if k := "fleet/site=bristol/" + filepath.ToSlash(rel); !keys[k] {
			t.Errorf("%s removed but not in the bucket: %v", k, keys)
		}
	}
}
