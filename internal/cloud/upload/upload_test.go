package upload

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/practable/lablog/internal/ops/fault"
)

// sample archive: three streams, two hours, one late file.
func sampleFiles(t *testing.T, root string) []string {
	t.Helper()
	var rels []string
	for _, stream := range []string{"spin30", "spin31", "pend00"} {
		for h, n := range []int{40, 7} {
			rels = append(rels, publish(t, root, stream, day.Add(time.Duration(14+h)*time.Hour), 1+uint64(h)*100, n))
		}
	}
	// A late file for an hour archived already.
	rels = append(rels, publish(t, root, "spin30", day.Add(14*time.Hour), 500, 3))
	return rels
}

func TestUploadsEveryFileOnceAndARestartUploadsNothing(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	u := New(e.options("bristol"), e.creds())
	if st := u.Stats(); st.State != StateStarting || st.Target != "s3://lab-archive/fleet/site=bristol/" {
		t.Errorf("before Run: %+v", st)
	}
	st := settle(t, u, 5)
	if st.FilesUploaded != int64(len(rels)) || st.FilesFound != 0 || st.FilesWaiting != 0 || st.BytesWaiting != 0 ||
		st.Failures != 0 || st.LastError != "" || st.BytesUploaded <= 0 || st.LastUploadAt.IsZero() || st.BytesPerSecond <= 0 {
		t.Errorf("stats %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
	// The objects carry the file's checksums.
	h, err := e.srv.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(e.bucket),
		Key: aws.String(u.Key(rels[0]))})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Metadata[MetaSHA256]) != 64 || !strings.HasPrefix(h.Metadata[MetaChecksum], "sha256:") || h.Metadata[MetaSite] != "bristol" {
		t.Errorf("metadata %v", h.Metadata)
	}

	// A restart (a new uploader on the same drive) sends nothing at all.
	puts := e.proxy.requests("PUT")
	u2 := New(e.options("bristol"), e.creds())
	st = settle(t, u2, 2)
	if st.FilesUploaded != 0 || st.FilesFound != 0 || e.proxy.requests("PUT") != puts {
		t.Errorf("after restart: %+v, PUTs %d -> %d", st, puts, e.proxy.requests("PUT"))
	}
	// A new file is found by the next look.
	rels = append(rels, publish(t, e.root, "spin31", day.Add(16*time.Hour), 1000, 5))
	st = settle(t, u2, 3)
	if st.FilesUploaded != 1 {
		t.Errorf("new file: %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
}

// A kill after the object was stored but before the ledger recorded it:
// the next run finds the object with the same checksum and records it,
// storing nothing again.
func TestKillBetweenUploadAndLedgerEndsInFoundNotDuplicate(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	settle(t, New(e.options("bristol"), e.creds()), 5)
	// The state a kill leaves: objects in the bucket, no (or a torn) ledger.
	ledgerDir := filepath.Join(e.root, LedgerDir)
	logs, _ := filepath.Glob(filepath.Join(ledgerDir, "*", "*.log"))
	if len(logs) != 1 {
		t.Fatalf("ledger files %v", logs)
	}
	data, _ := os.ReadFile(logs[0])
	lines := strings.SplitAfter(string(data), "\n")
	// Keep two lines and half of the third: a power cut mid-append.
	torn := lines[0] + lines[1] + lines[2][:len(lines[2])/2]
	if err := os.WriteFile(logs[0], []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	puts := e.proxy.requests("PUT")
	u := New(e.options("bristol"), e.creds())
	st := settle(t, u, 5)
	if st.FilesFound != int64(len(rels)-2) || st.FilesUploaded != 0 || st.Conflicts != 0 {
		t.Errorf("stats %+v, want %d found", st, len(rels)-2)
	}
	if got := e.proxy.requests("PUT") - puts; got != len(rels)-2 {
		t.Errorf("%d conditional PUTs, want %d", got, len(rels)-2)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
	// The ledger is whole again: another restart sends nothing.
	puts = e.proxy.requests("PUT")
	settle(t, New(e.options("bristol"), e.creds()), 2)
	if e.proxy.requests("PUT") != puts {
		t.Error("files sent again after the ledger was repaired")
	}
	if !strings.Contains(e.logText(), "in the bucket already with the same checksum") {
		t.Error("no log line about files found uploaded")
	}
}

func TestConflictIsLoudAndNothingIsOverwritten(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	o := e.options("bristol")
	var faults []string
	o.Fault = func(kind fault.Kind, detail string, count int64) {
		if kind == fault.UploadConflict {
			faults = append(faults, detail)
		}
	}
	u := New(o, e.creds())
	other := []byte("not this file")
	putObject(t, e, u.Key(rels[1]), other)
	st := settle(t, u, 5)
	if st.Conflicts != 1 || st.FilesWaiting != 1 || st.FilesUploaded != int64(len(rels)-1) {
		t.Errorf("stats %+v", st)
	}
	if len(faults) != 1 || !strings.Contains(faults[0], u.Key(rels[1])) || !strings.Contains(faults[0], "bytes") {
		t.Errorf("faults %q", faults)
	}
	resp, err := e.srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(u.Key(rels[1]))})
	if err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	got.ReadFrom(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got.Bytes(), other) {
		t.Error("the conflicting object was overwritten")
	}
	if !strings.Contains(e.logText(), "UPLOAD CONFLICT") {
		t.Error("no loud log line")
	}
	// Looked at again without sending the file: still a conflict, once.
	puts := e.proxy.requests("PUT")
	settle(t, u, 2)
	if st := u.Stats(); st.Conflicts != 1 || e.proxy.requests("PUT") != puts || len(faults) != 1 {
		t.Errorf("second look: %+v, PUTs %d -> %d, faults %d", st, puts, e.proxy.requests("PUT"), len(faults))
	}
	// A person removes the wrong object: the file goes up at the next look.
	if _, err := e.srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(e.bucket),
		Key: aws.String(u.Key(rels[1]))}); err != nil {
		t.Fatal(err)
	}
	st = settle(t, u, 3)
	if st.Conflicts != 0 || st.FilesWaiting != 0 || st.FilesUploaded != int64(len(rels)) {
		t.Errorf("after the fix: %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
}

// putObject stores body at key directly (not through the proxy).
func putObject(t *testing.T, e *env, key string, body []byte) {
	t.Helper()
	if _, err := e.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e.bucket),
		Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}
