package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"github.com/practable/lablog/internal/cloud/fleet"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/platform/failpoint"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/s3test"
	"github.com/practable/lablog/internal/testing/testkit"
)

// uploadSection is the upload: YAML of a daemon of site, with its
// credentials file written next to the config (dir).
func uploadSection(t *testing.T, dir string, srv *s3test.Server, bucket, site string) string {
	t.Helper()
	creds := fmt.Sprintf("access_key_id: %s\nsecret_access_key: %s\n", srv.AccessKey, srv.SecretKey)
	if err := os.WriteFile(filepath.Join(dir, "upload-credentials"), []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("compaction: {interval: 1s, grace: 0s, retry: 1s, open_hours: true}\n"+
		"upload: {endpoint: %q, bucket: %s, prefix: fleet, site: %s, path_style: true, wait_for_clock: false,\n"+
		"  interval: 1s, min_backoff: 50ms, max_backoff: 500ms, timeout: 30s}\n", srv.URL, bucket, site)
}

// archiveFiles lists the published Parquet files under root, relative.
func archiveFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == upload.LedgerDir {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Two sites record, compact and upload into one bucket on a real S3
// server; the bucket then holds every archive file of both, byte for byte,
// once, and DuckDB over the downloaded objects counts what was sent.
func TestTwoSitesUploadIntoOneBucket(t *testing.T) {
	srv := s3test.Start(t)
	const bucket = "fleet-archive"
	srv.Bucket(t, bucket)
	sites := map[string]map[string]int{
		"bristol": {"spin30": 40, "spin31": 15},
		"oxford":  {"spin30": 25, "pend00": 10},
	}
	daemons := map[string]*daemon{}
	for site, streams := range sites {
		dir := t.TempDir()
		var names []string
		for n := range streams {
			names = append(names, n)
		}
		sort.Strings(names)
		d := runInProcessIn(t, dir, names, "", uploadSection(t, dir, srv, bucket, site))
		daemons[site] = d
		for n, count := range streams {
			publishFrames(d.host, n, count)
		}
	}
	for site, d := range daemons {
		sent := 0
		for _, n := range sites[site] {
			sent += n
		}
		testkit.Eventually(t, 60*time.Second, site+": every frame archived and every file uploaded", func() bool {
			s := d.status(t)
			u := s.Upload
			if u == nil || s.Buffer.CommittedTotal < int64(sent) || s.Buffer.RecordsWaiting != 0 || u.FilesWaiting != 0 || u.FilesUploaded == 0 {
				return false
			}
			local := archiveFiles(t, d.archive)
			return int64(len(local)) == u.FilesUploaded && archivedMessages(t, d.archive) == sent
		})
		// A late record (a reconnect's connection events, under emulation)
		// may publish one more file after the wait above: the page and the
		// metric must say so too, and then say everything is uploaded; the
		// uploader's state is read once they do.
		testkit.Eventually(t, 60*time.Second, site+": the page says everything is uploaded, the metric 0 files waiting", func() bool {
			code, body := d.get(t, "/")
			return code == 200 && strings.Contains(string(body), "everything uploaded") &&
				metricValue(scrapeMetrics(t, d), "lablog_upload_files_waiting", "") == 0
		})
		s := d.status(t)
		if s.Upload.State != upload.StateIdle || s.Upload.Failures != 0 || s.Upload.LastError != "" || s.Upload.Target != "s3://"+bucket+"/fleet/site="+site+"/" {
			t.Errorf("%s: upload %+v", site, s.Upload)
		}
		// The keys are nowhere to be seen.
		for _, p := range []string{"/", "/api/status", "/metrics", "/healthz"} {
			_, body := d.get(t, p)
			if bytes.Contains(body, []byte(srv.SecretKey)) || bytes.Contains(body, []byte(srv.AccessKey)) {
				t.Errorf("%s: %s shows a key", site, p)
			}
		}
		if strings.Contains(d.logs.String(), srv.SecretKey) || strings.Contains(d.logs.String(), srv.AccessKey) {
			t.Errorf("%s: the log shows a key", site)
		}
	}
	for _, d := range daemons {
		if err := d.shutdown(); err != nil {
			t.Fatal(err)
		}
	}

	down := t.TempDir()
	objs := srv.Download(t, bucket, down)
	keys := map[string]bool{}
	for _, o := range objs {
		keys[o.Key] = true
	}
	for site, d := range daemons {
		local := archiveFiles(t, d.archive)
		if len(local) == 0 {
			t.Fatalf("%s: no archive files", site)
		}
		for _, rel := range local {
			key := "fleet/site=" + site + "/" + rel
			if !keys[key] {
				t.Errorf("%s: %s not in the bucket", site, rel)
				continue
			}
			delete(keys, key)
			a, _ := os.ReadFile(filepath.Join(d.archive, rel))
			b, _ := os.ReadFile(filepath.Join(down, key))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: %s differs from its object", site, rel)
			}
		}
		// lablog verify checks each site's tree: every file, and no row twice.
		var out bytes.Buffer
		if err := run(context.Background(), []string{"verify", filepath.Join(down, "fleet", "site="+site)}, &out, io.Discard); err != nil {
			t.Errorf("%s: lablog verify: %v\n%s", site, err, out.String())
		}
	}
	for k := range keys {
		t.Errorf("object %s is no archive file", k)
	}

	rows := duckdbtest.Query(t, fmt.Sprintf(`SELECT site, stream, count(*) AS n FROM read_parquet('%s/fleet/**/*.parquet', hive_partitioning = true)
		WHERE kind = 'message' GROUP BY ALL ORDER BY ALL`, down))
	got := map[string]string{}
	for _, r := range rows {
		got[fmt.Sprint(r["site"], "/", r["stream"])] = fmt.Sprint(r["n"])
	}
	want := map[string]string{}
	for site, streams := range sites {
		for n, c := range streams {
			want[site+"/"+n] = fmt.Sprint(c)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DuckDB counts %v, want %v", got, want)
	}
}

// The real binary is killed (SIGKILL) between a confirmed upload and its
// record in the ledger; the next run finds the object with the same
// checksum and records it: nothing lost, nothing stored twice.
func TestUploadKillBetweenPutAndLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; not in -short")
	}
	bin := lablogBinary(t)
	srv := s3test.Start(t)
	const bucket = "fleet-archive"
	srv.Bucket(t, bucket)
	host := newTestHost(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\nstatus: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n%s"+
		"streams:\n  - {name: spin30, relay_host: %s}\n", filepath.Join(dir, "buffer.db"), root,
		uploadSection(t, dir, srv, bucket, "bristol"), host.URL())
	cfgPath := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// First run: dies at the failpoint, after its first object is stored.
	logPath := filepath.Join(dir, "run1.log")
	logf, _ := os.Create(logPath)
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), failpoint.EnvVar+"="+upload.FailAfterPut)
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := host.WaitClients(ctx, "spin30", 1); err != nil {
		t.Fatal(err)
	}
	publishFrames(host, "spin30", 30)
	err := cmd.Wait()
	logf.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("first run did not die at the failpoint: %v\n%s", err, log)
	}
	stored := srv.List(t, bucket)
	if len(stored) == 0 {
		t.Fatal("killed before any object was stored")
	}

	// Second run: finds the stored object, uploads the rest.
	d := &daemon{host: host, archive: root, logs: &testkit.LogBuffer{}, done: make(chan error, 1)}
	run2, stop := context.WithCancel(ctx)
	d.cancel = stop
	go func() { d.done <- run(run2, []string{"run", "--config", cfgPath}, io.Discard, d.logs) }()
	t.Cleanup(func() { d.stop(t) })
	testkit.Eventually(t, 10*time.Second, "the status page's address", func() bool {
		m := statusURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			d.url = m[1]
		}
		return m != nil
	})
	testkit.Eventually(t, 60*time.Second, "every file settled", func() bool {
		u := d.status(t).Upload
		return u != nil && u.FilesWaiting == 0 && u.FilesFound >= 1 && s3Matches(t, srv, bucket, root)
	})
	if u := d.status(t).Upload; u.FilesFound != int64(len(stored)) {
		t.Errorf("found %d objects already there, want the %d stored before the kill: %+v", u.FilesFound, len(stored), u)
	}
	if !strings.Contains(d.logs.String(), "in the bucket already with the same checksum") {
		t.Errorf("no log line about the object found:\n%s", d.logs.String())
	}
}

// s3Matches reports whether the bucket holds exactly root's files, byte
// for byte, under site bristol.
func s3Matches(t *testing.T, srv *s3test.Server, bucket, root string) bool {
	t.Helper()
	local := archiveFiles(t, root)
	objs := srv.List(t, bucket)
	if len(objs) != len(local) {
		return false
	}
	down := t.TempDir()
	srv.Download(t, bucket, down)
	for _, rel := range local {
		a, _ := os.ReadFile(filepath.Join(root, rel))
		b, err := os.ReadFile(filepath.Join(down, "fleet", "site=bristol", rel))
		if err != nil || !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}

// S3 down while lablog records: recording goes on (200 on /healthz), the
// outage is a warning with its reason on /api/status and /healthz, and
// once the server is back every file arrives.
func TestUploadOutageShownThenRecovered(t *testing.T) {
	srv := s3test.Start(t)
	const bucket = "fleet-archive"
	srv.Bucket(t, bucket)
	srv.Stop()
	dir := t.TempDir()
	d := runInProcessIn(t, dir, []string{"spin30"}, "", uploadSection(t, dir, srv, bucket, "bristol"))
	publishFrames(d.host, "spin30", 20)
	testkit.Eventually(t, 30*time.Second, "every frame archived", func() bool { return archivedMessages(t, d.archive) == 20 })
	testkit.Eventually(t, 30*time.Second, "the outage on the status", func() bool {
		u := d.status(t).Upload
		return u != nil && u.Failures >= 2 && u.FilesWaiting > 0 && strings.Contains(u.LastError, "server unreachable")
	})
	s := d.status(t)
	if !s.Recording || s.Upload.State != upload.StateRetrying || s.Upload.OldestWaiting == nil {
		t.Errorf("during the outage: recording %v, upload %+v", s.Recording, s.Upload)
	}
	code, body := d.get(t, "/healthz")
	if code != 200 || !strings.Contains(string(body), "warning: upload failing (") || !strings.Contains(string(body), "server unreachable") {
		t.Errorf("/healthz %d %q", code, body)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "every file uploaded after the outage", func() bool {
		u := d.status(t).Upload
		return u.FilesWaiting == 0 && u.Failures == 0 && d.status(t).Buffer.RecordsWaiting == 0 && s3Matches(t, srv, bucket, d.archive)
	})
	// Recovered: no retry is scheduled any more.
	if u := d.status(t).Upload; u.NextAttemptAt != nil {
		t.Errorf("after recovery next_attempt_at is still %v", u.NextAttemptAt)
	}
}

func TestConfigCheckReadsUploadCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := "upload: {endpoint: \"https://s3.example.org\", bucket: lab-archive, prefix: fleet, site: bristol}\n" +
		"streams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n"
	cfgPath := filepath.Join(dir, "lablog.yaml")
	credPath := filepath.Join(dir, "upload-credentials")
	const secret = "s3cr3t-value-never-shown-0123456789"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(credPath, []byte("access_key_id: AKIAEXAMPLE99\nsecret_access_key: "+secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"config", "check", cfgPath}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "mode 0644 lets others read or change it: chmod 600") {
		t.Errorf("world-readable credentials: %v", err)
	}
	if err := os.Chmod(credPath, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"config", "check", cfgPath}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	want := "upload: s3://lab-archive/fleet/site=bristol/ at https://s3.example.org (access key AKIA****)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
	if strings.Contains(out.String()+errb.String(), secret) || strings.Contains(out.String(), "AKIAEXAMPLE99") {
		t.Errorf("a key is shown: %q", out.String())
	}
}

// lablog fleet lists what two sites uploaded, with the gap of one.
func TestFleetListsSitesStreamsAndGaps(t *testing.T) {
	srv := s3test.Start(t)
	const bucket = "fleet-archive"
	srv.Bucket(t, bucket)
	dir := t.TempDir()
	root := filepath.Join(dir, "archive")
	h := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	// Site bristol: spin30 at 22:00, 23:00 and 02:00 the next day; oxford: pend00 at 22:00.
	for site, hours := range map[string][]time.Time{"bristol": {h, h.Add(time.Hour), h.Add(4 * time.Hour)}, "oxford": {h}} {
		for i, hr := range hours {
			stream := "spin30"
			if site == "oxford" {
				stream = "pend00"
			}
			n := archive.Name{Stream: stream, Hour: hr, BufferID: "0123456789abcdef", First: uint64(i*10 + 1), Last: uint64(i*10 + 10)}
			key := "fleet/site=" + site + "/stream=" + stream + "/date=" + hr.Format(time.DateOnly) + "/" + archive.FileName(n)
			if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Body: strings.NewReader("0123456789")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "upload-credentials"),
		[]byte("access_key_id: "+srv.AccessKey+"\nsecret_access_key: "+srv.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := fmt.Sprintf("archive: {path: %s}\nupload: {endpoint: %q, bucket: %s, prefix: fleet, site: bristol, path_style: true}\n"+
		"streams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n", root, srv.URL, bucket)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"fleet", "--config", cfgPath}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"bristol  spin30  2026-11-26T22  2026-11-27T02  3      3      30     2026-11-27T00..2026-11-27T01 (2h)",
		"oxford   pend00  2026-11-26T22  2026-11-26T22  1      1      10     -",
		"2 streams, 2 missing hours; 0 other objects under s3://fleet-archive/fleet",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"fleet", "--config", cfgPath, "--json", "--site", "oxford"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Streams []fleet.Stream `json:"streams"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Streams) != 1 || doc.Streams[0].Stream != "pend00" || len(doc.Streams[0].Gaps) != 0 {
		t.Errorf("--json --site oxford: %v %s", err, out.String())
	}
	// Without an upload section it says so and fails.
	plain := filepath.Join(dir, "plain.yaml")
	os.WriteFile(plain, []byte("streams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n"), 0o644)
	if err := run(context.Background(), []string{"fleet", "--config", plain}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "no upload section") {
		t.Errorf("no upload section: %v", err)
	}
}

// lablog merge turns a day of two sites' hourly objects (late files
// included) into parts sorted by site, stream and received time, holding
// every row once; DuckDB reads them.
func TestMergeADayOfTheFleet(t *testing.T) {
	srv := s3test.Start(t)
	const bucket = "fleet-archive"
	srv.Bucket(t, bucket)
	dir := t.TempDir()
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	want := map[string]int{}       // rows of the day
	wantHourly := map[string]int{} // rows of every hourly object
	put := func(site, rel string, root string) {
		f, err := os.Open(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("fleet/site=" + site + "/" + rel), Body: f}); err != nil {
			t.Fatal(err)
		}
	}
	for si, site := range []string{"oxford", "bristol"} {
		root := filepath.Join(dir, site)
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, stream := range []string{"spin31", "spin30"} {
			seq := uint64(1)
			// Hours 13 and 09 (out of order on purpose), a late file for 09, and one of the next day.
			for _, h := range []int{13, 9, 9, 24} {
				n := 5 + si + h%4
				w, err := archive.Create(root, stream, day.Add(time.Duration(h)*time.Hour), archive.Options{BufferID: "0123456789abcdef"})
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					// Late frames were received after the earlier file's.
					at := day.Add(time.Duration(h)*time.Hour + time.Duration(seq)*time.Second)
					if err := w.Add(archive.Entry{Seq: seq, Rec: frame.Record{Stream: stream, Received: at, Kind: frame.Text,
						Data: []byte(fmt.Sprintf(`{"i":%d}{"j":%d}`, i, i))}}); err != nil {
						t.Fatal(err)
					}
					seq++
				}
				p, err := w.Publish()
				if err != nil {
					t.Fatal(err)
				}
				rel, _ := filepath.Rel(root, p)
				put(site, filepath.ToSlash(rel), root)
				if h < 24 {
					want[site+"/"+stream] += 2 * n // two messages per frame
				}
				wantHourly[site+"/"+stream] += 2 * n
			}
		}
	}
	os.WriteFile(filepath.Join(dir, "upload-credentials"), []byte("access_key_id: "+srv.AccessKey+"\nsecret_access_key: "+srv.SecretKey+"\n"), 0o600)
	cfgPath := filepath.Join(dir, "lablog.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("upload: {endpoint: %q, bucket: %s, prefix: fleet, site: any, path_style: true}\n"+
		"streams:\n  - {name: spin30, relay_host: ws://127.0.0.1:8888}\n", srv.URL, bucket)), 0o644)

	// An earlier merge of the day wrote more, smaller parts: the second
	// must leave none of them behind, or the day's rows count twice.
	if err := run(ctx, []string{"merge", "--config", cfgPath, "--date", "2026-11-26", "--part-rows", "7"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"merge", "--config", cfgPath, "--date", "2026-11-26", "--part-rows", "30"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "removed ") {
		t.Errorf("second merge's output says nothing of the earlier parts: %q", out.String())
	}
	total := 0
	for _, n := range want {
		total += n
	}
	if !strings.Contains(out.String(), fmt.Sprintf("merged 12 hourly objects, %d rows of 2026-11-26 into", total)) {
		t.Errorf("output %q", out.String())
	}
	down := t.TempDir()
	srv.Download(t, bucket, down)
	parts, _ := filepath.Glob(filepath.Join(down, "fleet", "compacted", "date=2026-11-26", "part-*.parquet"))
	if len(parts) != (total+29)/30 {
		t.Errorf("%d parts, want %d", len(parts), (total+29)/30)
	}
	glob := filepath.Join(down, "fleet", "compacted", "date=2026-11-26", "*.parquet")
	rows := duckdbtest.Query(t, fmt.Sprintf(`SELECT site, stream, count(*) AS n, count(DISTINCT (seq, part)) AS uniq FROM read_parquet('%s')
		GROUP BY ALL ORDER BY ALL`, glob))
	got := map[string]string{}
	for _, r := range rows {
		if fmt.Sprint(r["n"]) != fmt.Sprint(r["uniq"]) {
			t.Errorf("%v: a row twice", r)
		}
		got[fmt.Sprint(r["site"], "/", r["stream"])] = fmt.Sprint(r["n"])
	}
	wantS := map[string]string{}
	for k, n := range want {
		wantS[k] = fmt.Sprint(n)
	}
	if fmt.Sprint(got) != fmt.Sprint(wantS) {
		t.Errorf("rows per stream %v, want %v", got, wantS)
	}
	// In file order (parts by name, rows in order), the key never goes back.
	bad := duckdbtest.Query(t, fmt.Sprintf(`WITH r AS (SELECT site, stream, received_at, seq, part,
		row_number() OVER (ORDER BY filename, file_row_number) AS i FROM read_parquet('%s', filename = true, file_row_number = true)),
		l AS (SELECT *, lag(site) OVER w AS ps, lag(stream) OVER w AS pst, lag(received_at) OVER w AS pr, lag(seq) OVER w AS pq
		FROM r WINDOW w AS (ORDER BY i))
		SELECT count(*) AS n FROM l WHERE ps IS NOT NULL AND (site, stream, received_at, seq) < (ps, pst, pr, pq)`, glob))
	if fmt.Sprint(bad[0]["n"]) != "0" {
		t.Errorf("%v rows out of order", bad[0]["n"])
	}

	// docs/upload.md's fleet queries, word for word, over the merged bucket:
	// the hourly ones count each row once, hours 10-12 and 14-23 are gaps
	// (13 a stream), the merged one counts the day.
	queries := docFleetQueries(t, "s3://lab-archive/", down+"/")
	if len(queries) != 3 {
		t.Fatalf("docs/upload.md's fleet queries: %d, want 3", len(queries))
	}
	hourly := map[string]int{}
	for _, r := range duckdbtest.Query(t, queries[0]) {
		n, err := r["rows"].(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		hourly[fmt.Sprint(r["site"], "/", r["stream"])] += int(n)
	}
	if fmt.Sprint(hourly) != fmt.Sprint(wantHourly) {
		t.Errorf("docs/upload.md's hourly query: %v, want %v", hourly, wantHourly)
	}
	if gaps := duckdbtest.Query(t, queries[1]); len(gaps) != 4*13 {
		t.Errorf("docs/upload.md's gap query found %d missing hours, want %d:\n%v", len(gaps), 4*13, gaps)
	}
	merged := map[string]string{}
	for _, r := range duckdbtest.Query(t, queries[2]) {
		merged[fmt.Sprint(r["site"], "/", r["stream"])] = fmt.Sprint(r["rows"])
	}
	if fmt.Sprint(merged) != fmt.Sprint(wantS) {
		t.Errorf("docs/upload.md's merged query: %v, want %v", merged, wantS)
	}
}

// docFleetQueries returns the statements of docs/upload.md's "Querying
// the fleet" SQL block but CREATE SECRET, with from replaced by to.
func docFleetQueries(t *testing.T, from, to string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "upload.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "## Querying the fleet")
	_, block, _ := strings.Cut(section, "```sql\n")
	block, _, ok := strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/upload.md has no SQL block under \"Querying the fleet\"")
	}
	var out []string
	for _, stmt := range strings.Split(block, ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" && !strings.HasPrefix(stmt, "CREATE SECRET") {
			out = append(out, strings.ReplaceAll(stmt, from, to))
		}
	}
	return out
}

const readUpload = `JSON.stringify({
  hidden: document.getElementById("upload-section").hidden,
  updated: document.getElementById("updated").textContent,
  texts: ["upload-target", "upload-state", "upload-waiting", "upload-done", "upload-error"].map(function (id) {
    return document.getElementById(id).textContent;
  }),
  overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth
})`

type uploadPage struct {
	Hidden   bool     `json:"hidden"`
	Updated  string   `json:"updated"`
	Texts    []string `json:"texts"`
	Overflow bool     `json:"overflow"`
}

// The page's script words the upload as the server does, and shows an
// outage as it happens.
func TestUploadSectionInChromium(t *testing.T) {
	ctx := browser(t)
	srv := s3test.Start(t)
	const bucket = "fleet-archive"
	srv.Bucket(t, bucket)
	dir := t.TempDir()
	d := runInProcessIn(t, dir, []string{"spin30"}, "", uploadSection(t, dir, srv, bucket, "bristol"))
	publishFrames(d.host, "spin30", 10)
	testkit.Eventually(t, 30*time.Second, "the frames uploaded", func() bool {
		u := d.status(t).Upload
		return archivedMessages(t, d.archive) == 10 && u.FilesWaiting == 0 && u.State == upload.StateIdle &&
			u.FilesUploaded == int64(len(archiveFiles(t, d.archive)))
	})
	read := func() uploadPage {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readUpload))
		if err != nil {
			t.Fatal(err)
		}
		var p uploadPage
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(d.url+"/")); err != nil {
		t.Fatal(err)
	}
	server := read()
	if server.Hidden || server.Texts[1] != "everything uploaded" || !strings.HasPrefix(server.Texts[0], "s3://fleet-archive/fleet/site=bristol/ at http://127.0.0.1:") {
		t.Fatalf("server-rendered upload section: %+v", server)
	}
	var script uploadPage
	testkit.Eventually(t, 20*time.Second, "the page's own refresh", func() bool {
		script = read()
		return script.Updated != server.Updated
	})
	if strings.Join(script.Texts, "|") != strings.Join(server.Texts, "|") || script.Overflow {
		t.Errorf("script renders\n %q\nserver rendered\n %q (overflow %v)", script.Texts, server.Texts, script.Overflow)
	}
	srv.Stop()
	publishFrames(d.host, "spin30", 5)
	testkit.Eventually(t, 30*time.Second, "the outage on the page", func() bool {
		p := read()
		return strings.HasPrefix(p.Texts[1], "retrying with backoff after ") && strings.Contains(p.Texts[4], "server unreachable") &&
			strings.HasPrefix(p.Texts[2], "1 file (")
	})
	// An outage is a warning: the page says so in words and colours that
	// agree with its WARNING headline, and nothing is cut.
	for _, c := range contradictions(t, ctx) {
		t.Errorf("during the outage: %s", c)
	}
}
