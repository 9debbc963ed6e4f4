package upload

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/publish/archive"
)

// cycleUntil runs cycles (no backoff waits) until cond holds on the stats.
func cycleUntil(t *testing.T, u *Uploader, maxCycles int, what string, cond func(Stats) bool) Stats {
	t.Helper()
	for range maxCycles {
		u.mu.Lock()
		u.st.NextAttemptAt = time.Time{}
		u.mu.Unlock()
		u.cycle(context.Background())
		if st := u.Stats(); cond(st) {
			return st
		}
	}
	st := u.Stats()
	t.Fatalf("%s: not after %d cycles: %+v", what, maxCycles, st)
	return st
}

func TestServerDownThenBack(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	u := New(e.options("bristol"), e.creds())
	// Connections closed without an answer, then the server itself gone
	// (the proxy in front answers 502, as a load balancer would).
	e.proxy.set(func(p *proxy) { p.down = true })
	st := cycleUntil(t, u, 3, "failures while connections are cut", func(s Stats) bool { return s.Failures >= 2 })
	if st.State != StateRetrying || !strings.Contains(st.LastError, "server unreachable") || st.FilesWaiting != len(rels) ||
		st.OldestWaiting != day.Add(14*time.Hour) || st.NextAttemptAt.IsZero() || st.FilesUploaded != 0 {
		t.Errorf("while cut: %+v", st)
	}
	// The backoff grows: the next attempt is scheduled, not immediate.
	if wait := u.cycle(context.Background()); wait <= 0 || wait > e.options("").MaxBackoff {
		t.Errorf("cycle while backing off waits %v", wait)
	}
	e.proxy.set(func(p *proxy) { p.down = false })
	e.srv.Stop()
	st = cycleUntil(t, u, 3, "a 502", func(s Stats) bool { return strings.Contains(s.LastError, "Bad Gateway") })
	if !strings.Contains(st.LastError, "server error") || st.FilesUploaded != 0 {
		t.Errorf("while down: %+v", st)
	}
	if err := e.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	st = settle(t, u, 5)
	if st.FilesUploaded != int64(len(rels)) || st.Failures != 0 || st.LastError == "" {
		t.Errorf("after: %+v (the last error is kept after recovery)", st)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
}

func TestServerErrorsAreRetried(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	u := New(e.options("bristol"), e.creds())
	e.proxy.set(func(p *proxy) { p.fail = 5 })
	st := cycleUntil(t, u, 2, "a failure", func(s Stats) bool { return s.Failures > 0 })
	if !strings.Contains(st.LastError, "server error") || !strings.Contains(st.LastError, "InternalError") {
		t.Errorf("last error %q", st.LastError)
	}
	st = settle(t, u, 20)
	if st.FilesUploaded != int64(len(rels)) {
		t.Errorf("stats %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
}

// A server slower than upload.timeout: the request is abandoned and
// retried; when it is fast again everything arrives once. A slow answer to
// a PUT that was stored is the "lost answer" case: the retry finds it.
func TestSlowServerTimesOutThenRecovers(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	o := e.options("bristol")
	o.Timeout = time.Second
	u := New(o, e.creds())
	e.proxy.set(func(p *proxy) { p.delay = 5 * time.Second })
	st := cycleUntil(t, u, 2, "a timeout", func(s Stats) bool { return s.Failures > 0 })
	if !strings.Contains(st.LastError, "timed out") {
		t.Errorf("last error %q", st.LastError)
	}
	e.proxy.set(func(p *proxy) { p.delay = 0 })
	st = settle(t, u, 10)
	if st.FilesUploaded+st.FilesFound != int64(len(rels)) {
		t.Errorf("stats %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
}

// The clock jumps an hour ahead (as a Pi's does at NTP sync, the other
// way): the server refuses the signatures, the status says clock skew,
// and when the clock is right again everything goes up once.
func TestClockJumpIsShownAndSurvived(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	o := e.options("bristol")
	var offset atomic.Int64
	offset.Store(int64(time.Hour))
	o.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	u := New(o, e.creds())
	st := cycleUntil(t, u, 2, "a refused signature", func(s Stats) bool { return s.Failures > 0 })
	if !strings.Contains(st.LastError, "clock skew") || st.FilesUploaded != 0 {
		t.Errorf("stats %+v", st)
	}
	offset.Store(0)
	st = settle(t, u, 5)
	if st.FilesUploaded != int64(len(rels)) {
		t.Errorf("stats %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
	e.checkOnce(t)
}

func TestWrongCredentialsShownWithoutTheSecret(t *testing.T) {
	e := newEnv(t)
	sampleFiles(t, e.root)
	for _, c := range []Credentials{
		{AccessKeyID: e.srv.AccessKey, SecretAccessKey: "wrong-secret-value-0123456789"},
		{AccessKeyID: "AKIAWRONGKEYID000000", SecretAccessKey: e.srv.SecretKey},
	} {
		u := New(e.options("bristol"), c)
		st := cycleUntil(t, u, 2, "refused credentials", func(s Stats) bool { return s.Failures > 0 })
		if !strings.Contains(st.LastError, "credentials refused") || st.FilesUploaded != 0 {
			t.Errorf("%v: stats %+v", c, st)
		}
		for _, secret := range []string{c.SecretAccessKey, c.AccessKeyID} {
			if strings.Contains(st.LastError, secret) || strings.Contains(e.logText(), secret) {
				t.Errorf("a credential is in the error or the log:\n%s\n%s", st.LastError, e.logText())
			}
		}
	}
	if n := len(e.proxy.putCounts()); n != 0 {
		t.Errorf("%d objects stored with wrong credentials", n)
	}
}

// The machine's AWS_* variables (the test machines set AWS_CA_BUNDLE) must
// change nothing: lablog uses only what its configuration names.
func TestAmbientAWSEnvironmentIgnored(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAAMBIENT000000000", "AWS_SECRET_ACCESS_KEY": "ambient-secret", "AWS_SESSION_TOKEN": "ambient-token",
		"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "ap-south-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
		"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_CA_BUNDLE": "/nonexistent/ca.pem", "AWS_PROFILE": "nonexistent",
		"AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
		"AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_SUPPORTED", "AWS_S3_USE_ARN_REGION": "true",
		"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
	} {
		t.Setenv(k, v)
	}
	st := settle(t, New(e.options("bristol"), e.creds()), 5)
	if st.FilesUploaded != int64(len(rels)) || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
	e.checkBucket(t, "bristol", rels)
}

func TestWaitsForASyncedClock(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	o := e.options("bristol")
	o.WaitForClock = true
	var synced atomic.Bool
	o.ClockSynced = synced.Load
	u := New(o, e.creds())
	u.cycle(context.Background())
	if st := u.Stats(); st.State != StateWaitingForClock || st.FilesUploaded != 0 || e.proxy.requests("PUT") != 0 {
		t.Errorf("unsynced: %+v", st)
	}
	synced.Store(true)
	if st := settle(t, u, 5); st.FilesUploaded != int64(len(rels)) {
		t.Errorf("synced: %+v", st)
	}
}

// A drive pulled (marker gone) is "archive unavailable", not an upload
// failure; nothing is written to the bare mount point.
func TestYankedDriveIsNotAnUploadFailure(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	u := New(e.options("bristol"), e.creds())
	marker := filepath.Join(e.root, archive.MarkerFile)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	u.cycle(context.Background())
	st := u.Stats()
	if st.State != StateArchiveUnavailable || !strings.Contains(st.ArchiveProblem, "marker") || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(e.root, LedgerDir)); !os.IsNotExist(err) {
		t.Errorf("ledger written without the drive: %v", err)
	}
	os.WriteFile(marker, nil, 0o644)
	if st := settle(t, u, 5); st.FilesUploaded != int64(len(rels)) {
		t.Errorf("stats %+v", st)
	}
}

// A drive that cannot take the ledger (read-only, full): uploads are kept
// in memory and not repeated; after a restart they are found, not stored
// again.
func TestLedgerFailureRepeatsNothing(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	o := e.options("bristol")
	// A folder where the date's ledger file goes: every append fails, as
	// on a full or read-only drive (which root would still write).
	blocker := filepath.Join(e.root, LedgerDir, targetID(o.Endpoint, o.Bucket, o.Prefix, o.Site), day.Format(time.DateOnly)+".log")
	if err := os.MkdirAll(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	u := New(o, e.creds())
	st := settle(t, u, 5)
	if st.FilesUploaded != int64(len(rels)) || st.LedgerError == "" {
		t.Errorf("stats %+v", st)
	}
	puts := e.proxy.requests("PUT")
	settle(t, u, 2)
	if e.proxy.requests("PUT") != puts {
		t.Error("files sent again within the same run")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	st = settle(t, New(o, e.creds()), 5)
	if st.FilesFound != int64(len(rels)) || st.FilesUploaded != 0 {
		t.Errorf("after restart: %+v", st)
	}
	e.checkOnce(t)
}

func TestRetentionDeletesOnlyUploadedOldFiles(t *testing.T) {
	e := newEnv(t)
	old := sampleFiles(t, e.root) // 2026-11-26, long before now
	recent := publish(t, e.root, "spin30", time.Now().UTC().Truncate(time.Hour), 1, 4)
	o := e.options("bristol")
	o.DeleteAfterUpload, o.KeepDays = true, 2
	// The first old file conflicts: it is not uploaded, so it stays.
	var conflicts int
	o.Fault = func(fault.Kind, string, int64) { conflicts++ }
	u := New(o, e.creds())
	putObject(t, e, u.Key(old[0]), []byte("other"))
	settle(t, u, 5)
	st := settle(t, u, 2) // the next look retires what the first uploaded
	if st.FilesDeleted != int64(len(old)-1) || conflicts != 1 {
		t.Errorf("stats %+v, conflicts %d", st, conflicts)
	}
	for i, rel := range old {
		_, err := os.Stat(filepath.Join(e.root, rel))
		if i == 0 && err != nil {
			t.Errorf("a file not uploaded was deleted: %s", rel)
		}
		if i > 0 && !os.IsNotExist(err) {
			t.Errorf("uploaded old file kept: %s (%v)", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, recent)); err != nil {
		t.Errorf("a file within keep_days was deleted: %v", err)
	}
}

// An unusable credentials file turns upload off, says why, and is read
// again at each look: fixing it needs no restart.
func TestCredentialsFileFixedWithoutRestart(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	path := filepath.Join(t.TempDir(), "upload-credentials")
	body := "access_key_id: " + e.srv.AccessKey + "\nsecret_access_key: " + e.srv.SecretKey + "\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	u := NewFromFile(e.options("bristol"), path)
	u.cycle(context.Background())
	st := u.Stats()
	if st.State != StateNoCredentials || !strings.Contains(st.LastError, "mode 0644") || st.Failures != 1 ||
		strings.Contains(st.LastError, e.srv.SecretKey) {
		t.Errorf("stats %+v", st)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := settle(t, u, 5); st.FilesUploaded != int64(len(rels)) || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// After a recovery nothing is scheduled: the retry time of the last failure
// must not stay in the stats (the status page showed it, stale).
func TestRecoveryClearsNextAttempt(t *testing.T) {
	e := newEnv(t)
	rels := sampleFiles(t, e.root)
	u := New(e.options("bristol"), e.creds())
	e.proxy.set(func(p *proxy) { p.down = true })
	st := cycleUntil(t, u, 2, "a failure", func(s Stats) bool { return s.Failures > 0 })
	if st.NextAttemptAt.IsZero() {
		t.Fatalf("no retry scheduled after a failure: %+v", st)
	}
	e.proxy.set(func(p *proxy) { p.down = false })
	// The retry time comes: cycle as the loop would, without touching it.
	u.mu.Lock()
	u.st.NextAttemptAt = time.Now().Add(-time.Millisecond)
	u.mu.Unlock()
	for range 5 {
		if u.cycle(context.Background()); u.Stats().State == StateIdle {
			break
		}
	}
	st = u.Stats()
	if st.State != StateIdle || st.FilesUploaded != int64(len(rels)) || st.Failures != 0 || !st.NextAttemptAt.IsZero() {
		t.Errorf("after recovery: state %s, %d uploaded, %d failures, next attempt %v (want idle, %d, 0, none)",
			st.State, st.FilesUploaded, st.Failures, st.NextAttemptAt, len(rels))
	}
}

// A server that answers 403 before reading the upload may close the
// connection in the middle of the error's body (the CI's versitygw did, once
// in a while): the status came back, so the hint says the credentials were
// refused, not that the server closed the connection without an answer; and
// any other status cut short is not called "unreachable" either. The cut
// comes both ways a client meets it: a reset (the upload left unread) and a
// plain end of the stream.
func TestForbiddenWithItsBodyCutShort(t *testing.T) {
	var status atomic.Int32
	var reset atomic.Bool
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !reset.Load() {
			io.Copy(io.Discard, r.Body)
		}
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		if reset.Load() {
			c.(*net.TCPConn).SetLinger(0) // close with a reset
		}
		st := int(status.Load())
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code></Error>`
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", st, http.StatusText(st), len(body), body[:20])
		buf.Flush()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	o := Options{Endpoint: "http://" + ln.Addr().String(), Region: "us-east-1", Bucket: "lab-archive", PathStyle: true, Timeout: 5 * time.Second}
	client := NewClient(o, Credentials{AccessKeyID: "AKIAWRONGKEYID000000", SecretAccessKey: "wrong-secret-value-0123456789"})
	for _, rst := range []bool{true, false} {
		put := func(st int) error {
			status.Store(int32(st))
			reset.Store(rst)
			_, err := client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String("k"), Body: strings.NewReader("data")})
			if err == nil {
				t.Fatalf("PutObject went through a server that only answers %d", st)
			}
			return err
		}
		if err := put(http.StatusForbidden); !strings.Contains(hint(err), "credentials refused (HTTP 403") {
			t.Errorf("reset %v: hint %q for %v", rst, hint(err), err)
		}
		if err := put(http.StatusNotFound); strings.Contains(hint(err), "unreachable") {
			t.Errorf("reset %v: hint %q for %v: the server answered", rst, hint(err), err)
		}
	}
}
