package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/s3test"
	"github.com/practable/lablog/internal/testing/testkit"
)

const (
	subjectUsers  = 50
	subjectVictim = "u-017"
)

// subjectTemplate is a site's data before anything is uploaded: archive
// files of an older buffer, and records still in the current buffer.
type subjectTemplate struct {
	dir      string
	files    map[string]map[string]int // rel -> user -> rows
	buffered map[string]int            // user -> rows in the buffer
}

// newSubjectTemplate writes a site's archive (two streams, three hours)
// and buffer (a later hour) in a folder of its own.
func newSubjectTemplate(t *testing.T, seed uint64) *subjectTemplate {
	t.Helper()
	tpl := &subjectTemplate{dir: t.TempDir(), files: map[string]map[string]int{}, buffered: map[string]int{}}
	root := filepath.Join(tpl.dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	h0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, stream := range []string{"spin30", "pend00"} {
		for h := range 3 {
			hour := h0.Add(time.Duration(h) * time.Hour)
			counts := map[string]int{}
			recs := testkit.SubjectRecords(rng, stream, hour, 400, subjectUsers, counts)
			w, err := archive.Create(root, stream, hour, archive.Options{BufferID: fmt.Sprintf("%016x", seed), RowGroupRows: 150})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				if err := w.Add(archive.Entry{Seq: uint64(h*1000 + i + 1), Rec: r}); err != nil {
					t.Fatal(err)
				}
			}
			path, err := w.Publish()
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, path)
			tpl.files[filepath.ToSlash(rel)] = counts
		}
	}
	db, err := buffer.Open(filepath.Join(tpl.dir, "buffer.db"), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := testkit.SubjectRecords(rng, "spin30", h0.Add(5*time.Hour), 300, subjectUsers, tpl.buffered)
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return tpl
}

// subjectSite is a copy of a template set up as a site of a bucket: its
// files uploaded, then one of them deleted from the drive (as after
// delete_after_upload), so the bucket alone holds it.
type subjectSite struct {
	name, dir, cfg, root, bucket string
	bucketOnly                   string // rel of the file only the bucket holds
}

func newSubjectSite(t *testing.T, tpl *subjectTemplate, srv *s3test.Server, bucket, site string) *subjectSite {
	t.Helper()
	s := &subjectSite{name: site, dir: t.TempDir(), bucket: bucket}
	if out, err := exec.Command("cp", "-a", tpl.dir+"/.", s.dir).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	s.root = filepath.Join(s.dir, "archive")
	s.cfg = filepath.Join(s.dir, "lablog.yaml")
	yaml := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\nstatus: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n%s"+
		"streams:\n  - {name: spin30, relay_host: \"http://127.0.0.1:1\"}\n",
		filepath.Join(s.dir, "buffer.db"), s.root, uploadSection(t, s.dir, srv, bucket, site))
	if err := os.WriteFile(s.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := upload.LoadCredentials(cfg.Upload.CredentialsFile)
	if err != nil {
		t.Fatal(err)
	}
	u := upload.New(wire.Upload(cfg), creds)
	rels := sortedKeys(tpl.files)
	for _, rel := range rels {
		if err := u.UploadFile(context.Background(), rel); err != nil {
			t.Fatal(err)
		}
	}
	s.bucketOnly = rels[0]
	if err := os.Remove(filepath.Join(s.root, filepath.FromSlash(s.bucketOnly))); err != nil {
		t.Fatal(err)
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// erase runs the real binary's erase; with a failpoint armed it must die
// of SIGKILL there.
func (s *subjectSite) erase(t *testing.T, bin, fp string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "subject", "erase", "--user", subjectVictim, "--config", s.cfg, "--bucket")
	cmd.Env = os.Environ()
	if fp != "" {
		cmd.Env = append(cmd.Env, failpoint.EnvVar+"="+fp)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if fp == "" {
		if err != nil {
			t.Fatalf("%s: erase: %v\n%s", s.name, err, out.String())
		}
		return out.String()
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s: erase did not die at %s: %v\n%s", s.name, fp, err, out.String())
	}
	return out.String()
}

// userCounts is DuckDB's count of rows per user under dir.
func userCounts(t *testing.T, dir string) map[string]int {
	t.Helper()
	rows := duckdbtest.Query(t, fmt.Sprintf(`SELECT "user" AS u, count(*) AS n FROM read_parquet('%s/**/*.parquet', hive_partitioning = true)
		WHERE "user" IS NOT NULL GROUP BY ALL`, dir))
	got := map[string]int{}
	for _, r := range rows {
		var n int
		fmt.Sscan(fmt.Sprint(r["n"]), &n)
		got[fmt.Sprint(r["u"])] = n
	}
	return got
}

func sourced(files []subject.FilePlan, source string) bool {
	for _, f := range files {
		if f.Source == source {
			return true
		}
	}
	return false
}

func addCounts(dst, src map[string]int) {
	for u, n := range src {
		dst[u] += n
	}
}

// fileSums maps every file under dir (ledgers aside) to its SHA-256.
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		sums[filepath.ToSlash(rel)] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// endState is what a site's erasure leaves: every file on the drive and
// object of the site in the bucket by content, and the report's files.
type endState struct {
	Drive, Bucket map[string]string
	Report        []subject.FilePlan
}

func (s *subjectSite) endState(t *testing.T, srv *s3test.Server, out string) endState {
	t.Helper()
	down := t.TempDir()
	srv.Download(t, s.bucket, down)
	st := endState{Drive: fileSums(t, s.root), Bucket: fileSums(t, filepath.Join(down, "fleet", "site="+s.name))}
	reports, _ := filepath.Glob(filepath.Join(s.dir, subject.ReportDir, "*.json"))
	if len(reports) != 1 {
		t.Fatalf("%s: reports %v\n%s", s.name, reports, out)
	}
	r, err := subject.VerifyReport(reports[0], filepath.Join(s.dir, subject.PubKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	st.Report = r.Files
	return st
}

// Two sites, 50 users: one user is erased from each site's buffer, drive
// and objects in a shared bucket (on a real S3 server). DuckDB finds none
// of their rows on either drive or in the bucket and every other user's
// count unchanged; lablog verify passes on both; each report lists every
// file that held the user. Then the same erasure is killed (SIGKILL) at
// each failpoint and run again: the end state is the same, byte for byte.
func TestSubjectEraseAcrossAFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; not in -short")
	}
	bin := lablogBinary(t)
	srv := s3test.Start(t)
	const bucket = "fleet-erase"
	srv.Bucket(t, bucket)
	templates := map[string]*subjectTemplate{"bristol": newSubjectTemplate(t, 1), "oxford": newSubjectTemplate(t, 2)}
	reference := map[string]endState{}
	for _, name := range sortedKeys(templates) {
		tpl := templates[name]
		s := newSubjectSite(t, tpl, srv, bucket, name)
		// Which files hold the user, before: every one must be reported.
		var holding []string
		drive, inBucket := map[string]int{}, map[string]int{}
		for _, rel := range sortedKeys(tpl.files) {
			c := tpl.files[rel]
			if c[subjectVictim] > 0 {
				holding = append(holding, rel)
			}
			addCounts(inBucket, c)
			if rel != s.bucketOnly {
				addCounts(drive, c)
			}
		}
		addCounts(drive, tpl.buffered) // erasure archives the buffer
		if len(holding) == 0 || tpl.buffered[subjectVictim] == 0 {
			t.Fatalf("%s: the user is in %d files and %d buffered rows", name, len(holding), tpl.buffered[subjectVictim])
		}
		total := inBucket[subjectVictim] + tpl.buffered[subjectVictim]
		s.checkExport(t, total)
		out := s.erase(t, bin, "")
		s.checkExport(t, 0)

		down := t.TempDir()
		srv.Download(t, bucket, down)
		siteObjs := filepath.Join(down, "fleet", "site="+name)
		for where, c := range map[string]struct {
			dir  string
			want map[string]int
		}{"drive": {s.root, drive}, "bucket": {siteObjs, inBucket}} {
			got := userCounts(t, c.dir)
			if got[subjectVictim] != 0 {
				t.Errorf("%s %s: %d rows of %s left", name, where, got[subjectVictim], subjectVictim)
			}
			delete(c.want, subjectVictim)
			delete(got, subjectVictim)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s %s: rows per user\n got %v\nwant %v", name, where, got, c.want)
			}
			var vout bytes.Buffer
			if err := run(context.Background(), []string{"verify", c.dir}, &vout, io.Discard); err != nil {
				t.Errorf("%s %s: lablog verify: %v\n%s", name, where, err, vout.String())
			}
		}
		st := s.endState(t, srv, out)
		var reported []string
		for _, f := range st.Report {
			reported = append(reported, f.Old)
			if f.New == "" || f.NewSHA256 == "" || !f.Done || !f.BucketDone {
				t.Errorf("%s: report entry %+v", name, f)
			}
			if got := st.Bucket[f.New]; got != f.NewSHA256 {
				t.Errorf("%s: object %s has sha256 %s, the report says %s", name, f.New, got, f.NewSHA256)
			}
			if f.Source == "drive" && st.Drive[f.New] != f.NewSHA256 {
				t.Errorf("%s: file %s differs from the report", name, f.New)
			}
		}
		if !sourced(st.Report, "bucket") || !sourced(st.Report, "drive") {
			t.Errorf("%s: the report has no file rewritten from the bucket, or none from the drive: %+v", name, st.Report)
		}
		sort.Strings(reported)
		if fmt.Sprint(reported) != fmt.Sprint(holding) {
			t.Errorf("%s: the report lists\n%v\nthe user was in\n%v", name, reported, holding)
		}
		if !strings.Contains(out, "report: ") {
			t.Errorf("%s: output %s", name, out)
		}
		vout, err := runCmd(t, "subject", "verify-report", strings.TrimSpace(strings.SplitN(strings.SplitN(out, "report: ", 2)[1], "\n", 2)[0]))
		if err != nil || !strings.Contains(vout, "signature good") {
			t.Errorf("%s: verify-report: %v\n%s", name, err, vout)
		}
		// The ledger has the new files: the uploader sends nothing again.
		ledger, _ := filepath.Glob(filepath.Join(s.root, upload.LedgerDir, "*", "*.log"))
		var lines []byte
		for _, l := range ledger {
			b, _ := os.ReadFile(l)
			lines = append(lines, b...)
		}
		for _, f := range st.Report {
			if f.Source == "drive" && !bytes.Contains(lines, []byte(f.New+" "+f.NewSHA256)) {
				t.Errorf("%s: %s is not in the upload ledger", name, f.New)
			}
		}
		// A copy of a file from before the erasure put back on the drive
		// (an old drive) is held back by the daemon's uploader.
		old := st.Report[len(st.Report)-1].Old
		if err := os.Link(filepath.Join(tpl.dir, "archive", filepath.FromSlash(old)), filepath.Join(s.root, filepath.FromSlash(old))); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = wire.NewUploader(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil).UploadFile(context.Background(), old)
		if err == nil || !strings.Contains(err.Error(), "erased users") {
			t.Errorf("%s: the uploader sent a file of before the erasure: %v", name, err)
		}
		if err := os.Remove(filepath.Join(s.root, filepath.FromSlash(old))); err != nil {
			t.Fatal(err)
		}
		reference[name] = st
	}

	// Killed at each failpoint, then run again: the same end state.
	want := reference["bristol"]
	for i, fp := range subject.Failpoints {
		t.Run(fp, func(t *testing.T) {
			b := fmt.Sprintf("fleet-kill-%d", i)
			srv.Bucket(t, b)
			s := newSubjectSite(t, templates["bristol"], srv, b, "bristol")
			s.erase(t, bin, fp)
			out := s.erase(t, bin, "")
			got := s.endState(t, srv, out)
			if g, w := fmt.Sprint(got.Drive), fmt.Sprint(want.Drive); g != w {
				t.Errorf("drive differs from an uninterrupted erasure:\n got %v\nwant %v", got.Drive, want.Drive)
			}
			if g, w := fmt.Sprint(got.Bucket), fmt.Sprint(want.Bucket); g != w {
				t.Errorf("bucket differs from an uninterrupted erasure:\n got %v\nwant %v", got.Bucket, want.Bucket)
			}
			if g, w := fmt.Sprint(got.Report), fmt.Sprint(want.Report); g != w {
				t.Errorf("report differs from an uninterrupted erasure:\n got %v\nwant %v", got.Report, want.Report)
			}
			if _, err := os.Stat(filepath.Join(s.dir, subject.JournalFile)); err == nil {
				t.Error("the journal stayed")
			}
		})
	}
}

// checkExport runs lablog subject export --bucket and checks it found
// want rows of the user, each once, from both transports: websocket
// messages and /addLog statements (by username and by actor.id alone).
func (s *subjectSite) checkExport(t *testing.T, want int) {
	t.Helper()
	out := t.TempDir()
	if _, err := runCmd(t, "subject", "export", "--user", subjectVictim, "--config", s.cfg, "--bucket", "--site", s.name, "--out", out); err != nil {
		t.Fatalf("%s: export: %v", s.name, err)
	}
	var sum subject.Summary
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err == nil {
		err = json.Unmarshal(b, &sum)
	}
	if err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile(filepath.Join(out, "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	seen := map[string]bool{}
	n := 0
	for _, l := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var row subject.Line
		if err := json.Unmarshal(l, &row); err != nil {
			t.Fatal(err)
		}
		n++
		if row.User == nil || *row.User != subjectVictim {
			t.Fatalf("%s: exported a row of %v", s.name, row.User)
		}
		id := fmt.Sprint(*row.BufferID, row.Stream, row.Seq, row.Part)
		if seen[id] {
			t.Errorf("%s: row %s exported twice", s.name, id)
		}
		seen[id] = true
		switch {
		case row.Kind == "statement" && strings.Contains(*row.Query, "username="+subjectVictim):
			kinds["statement by username"]++
		case row.Kind == "statement":
			kinds["statement by actor.id"]++
		default:
			kinds[row.Kind]++
		}
	}
	days := 0
	for _, d := range sum.Days {
		days += int(d.Rows)
	}
	if n != want || int(sum.Rows) != want || days != want {
		t.Errorf("%s: exported %d rows, summary %d (days %d), want %d", s.name, n, sum.Rows, days, want)
	}
	if want > 0 && (kinds["message"] == 0 || kinds["statement by username"] == 0 || kinds["statement by actor.id"] == 0 ||
		sum.BySource["buffer"] == 0 || sum.BySource["drive"] == 0 || sum.BySource["bucket"] == 0 || sum.First == nil) {
		t.Errorf("%s: export kinds %v, summary %+v", s.name, kinds, sum)
	}
}

// Erase refuses, with what to do, while the daemon holds the buffer, and
// while another user's erasure is unfinished; export needs a user.
func TestSubjectEraseRefusals(t *testing.T) {
	cfgPath, bufPath := daemonConfig(t, "ws://127.0.0.1:1")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := wire.OpenBuffer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, "subject", "erase", "--user", "u-1", "--config", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "stop the daemon first") {
		t.Errorf("erase beside a running daemon: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(bufPath), subject.TombstoneFile)); err == nil {
		t.Error("a refused erasure wrote a tombstone")
	}
	// An erasure of u-1 interrupted (its journal left), then one of u-2.
	j := `{"user":"u-1","user_sha256":"` + subject.Hash("u-1") + `","files":[]}`
	if err := os.WriteFile(filepath.Join(filepath.Dir(bufPath), subject.JournalFile), []byte(j), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runCmd(t, "subject", "erase", "--user", "u-2", "--config", cfgPath)
	if !errors.Is(err, subject.ErrOtherErasure) || strings.Contains(err.Error(), "u-1") {
		t.Errorf("erase with another unfinished: %v", err)
	}
	out, err := runCmd(t, "subject", "erase", "--user", "u-1", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "report: ") {
		t.Errorf("finishing u-1: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "subject", "export", "--out", t.TempDir(), "--config", cfgPath); !errors.Is(err, errUsage) {
		t.Errorf("export without --user: %v", err)
	}
}

// Erasing one user archives the buffer without every user on the
// tombstone list: one erased before and recorded since is dropped too.
func TestSubjectEraseDropsEveryTombstonedUserFromTheBuffer(t *testing.T) {
	cfgPath, bufPath := daemonConfig(t, "ws://127.0.0.1:1")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := wire.OpenBuffer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	recs := testkit.SubjectRecords(rand.New(rand.NewPCG(5, 6)), "spin30", time.Now().Add(-3*time.Hour), 300, 5, counts)
	if err := db.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := subject.AddTombstone(subject.TombstonePath(bufPath), testkit.SubjectUser(2)); err != nil {
		t.Fatal(err)
	}
	// The live analytics state, counted with the user in: dropped.
	if err := os.WriteFile(bufPath+".analytics", []byte("state"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "subject", "erase", "--user", testkit.SubjectUser(1), "--config", cfgPath); err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if _, err := os.Stat(bufPath + ".analytics"); err == nil {
		t.Error("the analytics state is still there")
	}
	got := userCounts(t, cfg.Archive.Path)
	for _, u := range []string{testkit.SubjectUser(0), testkit.SubjectUser(3), testkit.SubjectUser(4)} {
		if got[u] != counts[u] || counts[u] == 0 {
			t.Errorf("%s: %d rows archived, %d recorded", u, got[u], counts[u])
		}
	}
	if got[testkit.SubjectUser(1)] != 0 || got[testkit.SubjectUser(2)] != 0 || counts[testkit.SubjectUser(2)] == 0 {
		t.Errorf("erased users archived: %v", got)
	}
}
