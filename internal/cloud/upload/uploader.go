// Package upload ships the archive's published hourly Parquet files to an
// S3-compatible bucket, each exactly once, under
// <prefix>/site=<site>/stream=<stream>/date=<YYYY-MM-DD>/<file name>.
//
// The archive itself is the queue: every published file not in the ledger
// (see LedgerDir) is waiting, oldest hour first. File names are
// deterministic, so an upload is idempotent: PutObject is conditional
// (If-None-Match: *), carries Content-MD5 and x-amz-checksum-sha256 for the
// server to verify, and the file's SHA-256 in the object's metadata. When
// the key exists already (a retry after a lost answer, or a crash between
// the upload and the ledger), the object's checksum is compared with the
// file's: equal is done, different is a conflict, reported as a fault and
// never overwritten.
//
// Uploads wait for a synchronised clock (S3 refuses requests signed more
// than 15 minutes off), back off exponentially with jitter after a
// failure, and never touch a drive that is not the archive drive. Local
// files are deleted only when delete_after_upload is on, the upload is
// recorded, and the file is older than keep_days.
package upload

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/platform/logkey"
	"github.com/practable/lablog/internal/publish/archive"
)

// Metadata keys (x-amz-meta-*) lablog stores with every object.
const (
	MetaSHA256   = "lablog-sha256"   // hex SHA-256 of the file's bytes
	MetaChecksum = "lablog-checksum" // the file's lablog.checksum (of its frames)
	MetaSite     = "lablog-site"
)

// States of the uploader, as /api/status shows them.
const (
	StateStarting           = "starting"
	StateIdle               = "idle" // everything uploaded
	StateUploading          = "uploading"
	StateRetrying           = "retrying" // waiting after a failure
	StateWaitingForClock    = "waiting_for_clock"
	StateArchiveUnavailable = "archive_unavailable"
	// StateNoCredentials: the credentials file cannot be used; it is read
	// again at every look, so fixing it needs no restart.
	StateNoCredentials = "no_credentials"
)

// Defaults of the Options (and of the upload section of lablog.yaml).
const (
	DefaultRegion      = "us-east-1"
	DefaultConcurrency = 2
	DefaultKeepDays    = 30
	DefaultInterval    = time.Minute
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultTimeout     = 10 * time.Minute
)

// Options configure an Uploader. Zero fields take the defaults above where
// there is one.
type Options struct {
	Root    string // archive.path
	Require string // archive.require

	Endpoint, Region, Bucket, Prefix, Site string
	PathStyle                              bool

	Concurrency       int
	BandwidthLimit    int64 // bytes per second, 0 for none
	DeleteAfterUpload bool
	KeepDays          int
	WaitForClock      bool

	Interval, MinBackoff, MaxBackoff, Timeout time.Duration

	// Now is the wall clock requests are signed with (time.Now).
	Now func() time.Time
	// ClockSynced says whether the system clock is synchronised.
	ClockSynced func() bool
	Logger      *slog.Logger
	// Fault, when set, is told of conflicts: an object at a file's key
	// with other content.
	Fault func(kind fault.Kind, detail string, count int64)
	// Check, when set, may refuse a file before it is sent (one that holds
	// an erased user's rows): it is held back like a conflict, with the
	// reason, and looked at again on every cycle.
	Check func(path string) error
}

// Target is where the files go: s3://bucket/prefix/site=<site>/.
func (o Options) Target() string {
	return "s3://" + path.Join(o.Bucket, o.Prefix, "site="+o.Site) + "/"
}

// Stats is the uploader's state for the status page. It holds no
// credential.
type Stats struct {
	State    string
	Endpoint string
	Target   string // s3://bucket/prefix/site=<site>/
	// Waiting: published files not uploaded yet, their bytes, and the hour
	// of the oldest (the upload lag). Conflicts are among them.
	FilesWaiting  int
	BytesWaiting  int64
	OldestWaiting time.Time
	Conflicts     int
	// Since start: files uploaded, and files found uploaded already (same
	// checksum), their bytes; files deleted by retention.
	FilesUploaded, FilesFound, BytesUploaded, FilesDeleted int64
	LastUploadAt                                           time.Time
	// BytesPerSecond is the upload rate over the last minute.
	BytesPerSecond float64
	// LastError is the latest failure (kept after recovery); Failures
	// counts failures since the last success; NextAttemptAt is when a
	// waiting uploader tries again, zero when no retry is scheduled.
	LastError     string
	LastErrorAt   time.Time
	Failures      int
	NextAttemptAt time.Time
	// LedgerError: the drive did not take the record of an upload (full,
	// read-only); it is kept in memory, and found again after a restart.
	LedgerError string
	// ArchiveProblem says why the archive cannot be read, in that state.
	ArchiveProblem string
}

// Uploader ships the archive's files. Run it once.
type Uploader struct {
	opts      Options
	loadCreds func() (Credentials, error)
	client    *s3.Client // nil until the credentials are read
	clean     redactor
	lim       *limiter
	scan      scanner
	log       *slog.Logger

	trigger chan struct{}

	mu        sync.Mutex
	st        Stats
	waiting   map[string]file   // rel -> pending file
	conflicts map[string]string // rel -> detail
	memDone   map[string]bool   // uploaded, not in the ledger (write failed)
	failures  map[string]int    // per file, to try a failing file last
	recent    []sample          // completed uploads of the last minute
	backoff   time.Duration
}

type sample struct {
	at    time.Time
	bytes int64
}

// New makes an uploader with the given credentials.
func New(o Options, creds Credentials) *Uploader {
	return newUploader(o, func() (Credentials, error) { return creds, nil })
}

// NewFromFile makes an uploader whose credentials are read from path (see
// LoadCredentials). A file that cannot be used does not stop lablog: the
// uploader shows why and reads it again at every look.
func NewFromFile(o Options, path string) *Uploader {
	return newUploader(o, func() (Credentials, error) { return LoadCredentials(path) })
}

func newUploader(o Options, loadCreds func() (Credentials, error)) *Uploader {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.KeepDays <= 0 {
		o.KeepDays = DefaultKeepDays
	}
	for _, x := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&o.Interval, DefaultInterval}, {&o.MinBackoff, DefaultMinBackoff}, {&o.MaxBackoff, DefaultMaxBackoff}, {&o.Timeout, DefaultTimeout}} {
		if *x.v <= 0 {
			*x.v = x.def
		}
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Require == "" {
		o.Require = archive.RequireMarker
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClockSynced == nil {
		o.ClockSynced = func() bool { return true }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	u := &Uploader{
		opts:      o,
		loadCreds: loadCreds,
		lim:       newLimiter(o.BandwidthLimit),
		log:       o.Logger.With("upload", "s3://"+o.Bucket),
		trigger:   make(chan struct{}, 1),
		waiting:   map[string]file{},
		conflicts: map[string]string{},
		memDone:   map[string]bool{},
		failures:  map[string]int{},
	}
	u.scan = scanner{
		root:   o.Root,
		ledger: ledgerOf(o),
		dirs:   map[string]dirState{},
		settle: 2 * time.Second,
	}
	u.st = Stats{State: StateStarting, Endpoint: o.Endpoint, Target: o.Target()}
	return u
}

// Key is the object key of an archive file (rel: stream=<s>/date=<d>/<name>).
func (u *Uploader) Key(rel string) string {
	return path.Join(u.opts.Prefix, "site="+u.opts.Site, rel)
}

// Trigger asks for a look at the archive now (after a compaction). It does
// not cut a backoff short.
func (u *Uploader) Trigger() {
	select {
	case u.trigger <- struct{}{}:
	default:
	}
}

// Stats reports the current state.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.st
	s.FilesWaiting, s.BytesWaiting, s.OldestWaiting = len(u.waiting), 0, time.Time{}
	for _, f := range u.waiting {
		s.BytesWaiting += f.size
		if s.OldestWaiting.IsZero() || f.hour.Before(s.OldestWaiting) {
			s.OldestWaiting = f.hour
		}
	}
	s.Conflicts = len(u.conflicts)
	now := time.Now()
	var sum int64
	for _, r := range u.recent {
		if now.Sub(r.at) < time.Minute {
			sum += r.bytes
		}
	}
	s.BytesPerSecond = float64(sum) / 60
	return s
}

// Run uploads until ctx ends. Failures are retried and shown in Stats, so
// it returns nil.
func (u *Uploader) Run(ctx context.Context) error {
	u.log.Info("uploading archive files", "endpoint", u.opts.Endpoint, "target", u.st.Target)
	for {
		wait := u.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-u.trigger:
			t.Stop()
		case <-t.C:
		}
	}
}

// clockPoll is how often an unsynced clock is asked again.
const clockPoll = 5 * time.Second

// cycle looks at the archive and uploads what waits; it returns how long to
// wait before the next look.
func (u *Uploader) cycle(ctx context.Context) time.Duration {
	if u.client == nil {
		creds, err := u.loadCreds()
		if err != nil {
			u.mu.Lock()
			if u.st.LastError != err.Error() {
				u.log.Error("upload off until its credentials file is fixed", logkey.Err, err)
			}
			u.st.State, u.st.Failures = StateNoCredentials, 1
			u.st.LastError, u.st.LastErrorAt = err.Error(), time.Now()
			u.mu.Unlock()
			return u.opts.Interval
		}
		u.client, u.clean = newClient(u.opts, creds), newRedactor(creds)
		u.mu.Lock()
		if u.st.State == StateNoCredentials {
			u.recovered()
		}
		u.mu.Unlock()
	}
	if u.opts.WaitForClock && !u.opts.ClockSynced() {
		u.setState(StateWaitingForClock, "")
		return min(clockPoll, u.opts.Interval)
	}
	if err := archive.CheckTarget(u.opts.Root, u.opts.Require); err != nil {
		reason := err.Error()
		var te *archive.TargetError
		if errors.As(err, &te) {
			reason = te.Reason
		}
		u.setState(StateArchiveUnavailable, reason)
		return u.opts.Interval
	}
	cutoff := ""
	if u.opts.DeleteAfterUpload {
		cutoff = time.Now().UTC().AddDate(0, 0, -u.opts.KeepDays).Format(time.DateOnly)
	}
	u.mu.Lock()
	extra := make(map[string]bool, len(u.memDone))
	for k := range u.memDone {
		extra[k] = true
	}
	u.mu.Unlock()
	res, err := u.scan.scan(extra, cutoff)
	if err != nil {
		u.setState(StateArchiveUnavailable, err.Error())
		return u.opts.Interval
	}
	u.retire(res.old)
	u.mu.Lock()
	u.waiting = make(map[string]file, len(res.pending))
	for _, f := range res.pending {
		u.waiting[f.rel] = f
	}
	next := u.st.NextAttemptAt
	u.mu.Unlock()
	if wait := time.Until(next); wait > 0 {
		u.setState(StateRetrying, "")
		return wait
	}
	todo := u.order(res.pending)
	if len(todo) == 0 {
		u.setState(StateIdle, "")
		return u.opts.Interval
	}
	u.setState(StateUploading, "")
	settled, err := u.uploadAll(ctx, todo)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		return u.fail(err)
	}
	u.mu.Lock()
	u.recovered()
	u.mu.Unlock()
	if settled > 0 {
		return 0 // look again at once: more may have been published meanwhile
	}
	// Only conflicts wait: they are shown, and looked at again later.
	u.setState(StateIdle, "")
	return u.opts.Interval
}

func (u *Uploader) setState(state, archiveProblem string) {
	u.mu.Lock()
	u.st.State, u.st.ArchiveProblem = state, archiveProblem
	u.mu.Unlock()
}

// order puts the files to try in order: those that failed least first, then
// oldest hour first; known conflicts last (they are looked at again, so a
// person's fix in the bucket is picked up without a restart).
func (u *Uploader) order(pending []file) []file {
	u.mu.Lock()
	defer u.mu.Unlock()
	todo := slices.Clone(pending)
	rank := func(f file) int {
		if _, ok := u.conflicts[f.rel]; ok {
			return 1 << 30
		}
		return u.failures[f.rel]
	}
	sort.SliceStable(todo, func(i, j int) bool {
		a, b := todo[i], todo[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if !a.hour.Equal(b.hour) {
			return a.hour.Before(b.hour)
		}
		return a.rel < b.rel
	})
	return todo
}

// recovered forgets the failures since the last success, and the retry they
// scheduled, so the stats show no retry that will not happen (LastError is
// kept: it is history). u.mu must be held.
func (u *Uploader) recovered() {
	u.st.Failures, u.st.NextAttemptAt, u.backoff = 0, time.Time{}, 0
}

// fail records a failed round and schedules the next: exponential backoff
// from MinBackoff to MaxBackoff, each wait drawn from its upper half.
func (u *Uploader) fail(err error) time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.backoff == 0 {
		u.backoff = u.opts.MinBackoff
	} else {
		u.backoff = min(u.backoff*2, u.opts.MaxBackoff)
	}
	wait := u.backoff/2 + rand.N(u.backoff/2+1)
	now := time.Now()
	u.st.Failures++
	u.st.LastError, u.st.LastErrorAt, u.st.NextAttemptAt = err.Error(), now, now.Add(wait)
	u.st.State = StateRetrying
	u.log.Warn("upload failed; retrying later", logkey.Err, err, "failures", u.st.Failures, "retry_in", wait.Round(time.Millisecond))
	return wait
}

// uploadAll uploads todo with Concurrency workers; after the first failure
// no new file is started, and the first error is returned. settled counts
// the files uploaded or found uploaded.
func (u *Uploader) uploadAll(ctx context.Context, todo []file) (settled int, err error) {
	jobs := make(chan file)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
		n     atomic.Int64
	)
	failed := func() bool { errMu.Lock(); defer errMu.Unlock(); return first != nil }
	for range u.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				ok, err := u.uploadOne(ctx, f)
				if ok {
					n.Add(1)
				}
				if err != nil {
					u.mu.Lock()
					u.failures[f.rel]++
					u.mu.Unlock()
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
				}
			}
		}()
	}
	for _, f := range todo {
		if failed() || ctx.Err() != nil {
			break
		}
		select {
		case jobs <- f:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return int(n.Load()), first
}

// sums are a file's checksums, computed in one read.
type sums struct {
	sha256, md5 []byte
}

// uploadOne puts one file, or settles it when the bucket has it already.
func (u *Uploader) uploadOne(ctx context.Context, f file) (settled bool, err error) {
	key := u.Key(f.rel)
	wrap := func(err error) error {
		msg := u.clean.clean(err.Error())
		if h := hint(err); h != "" {
			msg = h + ": " + msg
		}
		return fmt.Errorf("upload %s: %s", key, msg)
	}
	local := filepath.Join(u.opts.Root, filepath.FromSlash(f.rel))
	meta, err := archive.ReadMeta(local)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	if u.opts.Check != nil {
		if err := u.opts.Check(local); err != nil {
			u.hold(f, err.Error())
			return false, nil
		}
	}
	fh, err := os.Open(local)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	var s sums
	hs, hm := sha256.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(hs, hm), fh); err != nil {
		return false, fmt.Errorf("upload %s: read: %w", key, err)
	}
	s.sha256, s.md5 = hs.Sum(nil), hm.Sum(nil)
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("upload %s: %w", key, err)
	}
	shaHex := hex.EncodeToString(s.sha256)

	rctx, cancel := context.WithTimeout(ctx, u.opts.Timeout)
	defer cancel()
	u.mu.Lock()
	_, conflicting := u.conflicts[f.rel]
	u.mu.Unlock()
	if conflicting {
		// Look before sending the body again: still there and different
		// is still a conflict; gone means a person removed it.
		same, _, err := u.compare(rctx, key, st.Size(), s)
		switch {
		case err == nil && same:
			u.done(f, shaHex, st.Size(), true, 0)
			return true, nil
		case err == nil:
			return false, nil
		case httpStatus(err) != http.StatusNotFound:
			return false, wrap(err)
		}
	}
	started := time.Now()
	_, err = u.client.PutObject(rctx, &s3.PutObjectInput{
		Bucket:         aws.String(u.opts.Bucket),
		Key:            aws.String(key),
		Body:           &limitedBody{ctx: rctx, r: fh, lim: u.lim},
		ContentLength:  aws.Int64(st.Size()),
		ContentMD5:     aws.String(base64.StdEncoding.EncodeToString(s.md5)),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(s.sha256)),
		ContentType:    aws.String("application/vnd.apache.parquet"),
		IfNoneMatch:    aws.String("*"),
		Metadata:       map[string]string{MetaSHA256: shaHex, MetaChecksum: meta.Checksum, MetaSite: u.opts.Site},
	}, withPayloadHash(shaHex))
	found := false
	switch {
	case err == nil:
	case alreadyExists(err):
		same, detail, herr := u.compare(rctx, key, st.Size(), s)
		if herr != nil {
			return false, wrap(herr)
		}
		if !same {
			u.conflict(f, key, detail)
			return false, nil
		}
		found = true
	default:
		return false, wrap(err)
	}
	u.done(f, shaHex, st.Size(), found, time.Since(started))
	return true, nil
}

// compare tells whether the object at key holds the file: by the SHA-256 in
// its metadata, else by its S3 SHA-256 checksum, else by a plain upload's
// ETag (the MD5). detail says how they differ.
func (u *Uploader) compare(ctx context.Context, key string, size int64, s sums) (bool, string, error) {
	h, err := u.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.opts.Bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return false, "", fmt.Errorf("compare with the object there: %w", err)
	}
	shaHex := hex.EncodeToString(s.sha256)
	remote := aws.ToInt64(h.ContentLength)
	switch {
	case remote != size:
		return false, fmt.Sprintf("the object has %d bytes, the file %d", remote, size), nil
	case h.Metadata[MetaSHA256] != "":
		if h.Metadata[MetaSHA256] != shaHex {
			return false, fmt.Sprintf("the object's SHA-256 is %s, the file's %s", h.Metadata[MetaSHA256], shaHex), nil
		}
		return true, "", nil
	case aws.ToString(h.ChecksumSHA256) != "":
		if b, err := base64.StdEncoding.DecodeString(aws.ToString(h.ChecksumSHA256)); err != nil || !bytes.Equal(b, s.sha256) {
			return false, "the object's x-amz-checksum-sha256 differs from the file's", nil
		}
		return true, "", nil
	case strings.Trim(aws.ToString(h.ETag), `"`) == hex.EncodeToString(s.md5):
		return true, "", nil
	}
	return false, "the object has no lablog checksum and its ETag is not the file's MD5", nil
}

// conflict reports an object that holds something else at a file's key.
func (u *Uploader) conflict(f file, key, detail string) {
	msg := fmt.Sprintf("s3://%s/%s exists with other content than %s: %s", u.opts.Bucket, key, f.rel, detail)
	u.mu.Lock()
	_, known := u.conflicts[f.rel]
	u.conflicts[f.rel] = msg
	u.mu.Unlock()
	if known {
		return
	}
	u.log.Error("UPLOAD CONFLICT: an object with other content is at this file's key; nothing was overwritten", "detail", msg)
	if u.opts.Fault != nil {
		u.opts.Fault(fault.UploadConflict, msg, 1)
	}
}

// hold keeps a file that Check refused out of the bucket, shown as a
// conflict until the file changes.
func (u *Uploader) hold(f file, why string) {
	msg := fmt.Sprintf("%s not uploaded: %s", f.rel, why)
	u.mu.Lock()
	old, known := u.conflicts[f.rel]
	u.conflicts[f.rel] = msg
	u.mu.Unlock()
	if known && old == msg {
		return
	}
	u.log.Error("UPLOAD HELD BACK: the file must not leave the drive as it is", "detail", msg)
	if u.opts.Fault != nil {
		u.opts.Fault(fault.UploadConflict, msg, 1)
	}
}

// FailAfterPut is hit between a file's confirmed upload and its record in
// the ledger: a crash there must end in "found, same checksum", not in a
// second copy.
const FailAfterPut = "upload-after-put-before-ledger"

// done records a file as uploaded (durably when the drive takes it).
func (u *Uploader) done(f file, shaHex string, size int64, found bool, took time.Duration) {
	// An injected error stands for a ledger that cannot be written.
	lerr := failpoint.Hit(FailAfterPut)
	if lerr == nil {
		lerr = archive.CheckTarget(u.opts.Root, u.opts.Require)
	}
	if lerr == nil {
		lerr = u.scan.ledger.add(f.date, f.rel, shaHex)
	}
	now := time.Now()
	u.mu.Lock()
	delete(u.waiting, f.rel)
	delete(u.failures, f.rel)
	delete(u.conflicts, f.rel)
	if lerr != nil {
		u.memDone[f.rel] = true
		if u.st.LedgerError == "" {
			u.log.Error("upload done but not recorded on the drive; kept in memory", logkey.Path, f.rel, logkey.Err, lerr)
		}
		u.st.LedgerError = lerr.Error()
	} else {
		u.st.LedgerError = ""
	}
	if found {
		u.st.FilesFound++
	} else {
		u.st.FilesUploaded++
		u.st.BytesUploaded += size
		u.recent = append(u.recent, sample{now, size})
		for len(u.recent) > 0 && now.Sub(u.recent[0].at) >= time.Minute {
			u.recent = u.recent[1:]
		}
	}
	u.st.LastUploadAt = now
	u.mu.Unlock()
	if found {
		u.log.Info("file was in the bucket already with the same checksum; recorded as uploaded", logkey.Path, f.rel)
	} else {
		u.log.Debug("uploaded", logkey.Path, f.rel, "bytes", size, "took", took.Round(time.Millisecond))
	}
}

// retire deletes uploaded files past the retention cut-off.
func (u *Uploader) retire(old []file) {
	for _, f := range old {
		if err := archive.CheckTarget(u.opts.Root, u.opts.Require); err != nil {
			return
		}
		if err := os.Remove(filepath.Join(u.opts.Root, filepath.FromSlash(f.rel))); err != nil {
			u.log.Warn("retention: cannot delete an uploaded file", logkey.Path, f.rel, logkey.Err, err)
			continue
		}
		u.mu.Lock()
		u.st.FilesDeleted++
		u.mu.Unlock()
	}
	if len(old) > 0 {
		u.log.Info("retention: deleted uploaded files older than keep_days", "files", len(old), "keep_days", u.opts.KeepDays)
	}
}

// UploadFile uploads one published file now (rel: stream=<s>/date=<d>/<name>
// under Options.Root) exactly as a cycle would, ledger included, for tools
// that replace an object (lablog subject erase). An object already there
// with the same checksum counts as uploaded; one with other content is an
// error.
func (u *Uploader) UploadFile(ctx context.Context, rel string) error {
	if u.client == nil {
		creds, err := u.loadCreds()
		if err != nil {
			return err
		}
		u.client, u.clean = newClient(u.opts, creds), newRedactor(creds)
	}
	local := filepath.Join(u.opts.Root, filepath.FromSlash(rel))
	st, err := os.Stat(local)
	if err != nil {
		return fmt.Errorf("upload %s: %w", rel, err)
	}
	n, ok := archive.ParseFileName(filepath.Base(local))
	if !ok {
		return fmt.Errorf("upload %s: not an archive file name", rel)
	}
	f := file{rel: rel, stream: n.Stream, date: n.Hour.Format("2006-01-02"), hour: n.Hour, size: st.Size()}
	settled, err := u.uploadOne(ctx, f)
	if err != nil {
		return err
	}
	if !settled {
		u.mu.Lock()
		why := u.conflicts[rel]
		u.mu.Unlock()
		return fmt.Errorf("upload %s: %s", rel, why)
	}
	return nil
}
