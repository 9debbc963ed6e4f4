package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/status"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/privacy"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/testkit"
)

// privacyUsers are the students of the traffic: ids distinctive enough
// that finding one in a file cannot be chance.
var privacyUsers = []string{"stu-Quokka-7731", "stu-Narwhal-0442", "stu-Axolotl-9120"}

// privacyRun is what one run of the real binary left behind.
type privacyRun struct {
	dir, archive, buffer string
	page, api, metrics   []byte
	logs                 string
	bufferRecords        []frame.Record
	matrices             map[string][]byte // adjacency file name -> content
}

// runPrivacyTraffic runs lablog (the real binary) with the extra YAML,
// sends the same websocket frames and /addLog statements every time,
// collects the page, the status API, the metrics and the log, then stops
// it, reads the buffer, compacts and runs lablog analytics.
func runPrivacyTraffic(t *testing.T, extra string) privacyRun {
	t.Helper()
	host := newTestHost(t)
	dir := t.TempDir()
	r := privacyRun{dir: dir, archive: filepath.Join(dir, "archive"), buffer: filepath.Join(dir, "buffer.db")}
	if err := os.Mkdir(r.archive, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "lablog.yaml")
	cfg := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s, require: none}\nsources: {min_backoff: 50ms, max_backoff: 200ms}\n"+
		"status: {listen: \"127.0.0.1:0\"}\nled: {path: \"\"}\n%s\n%s\nstreams:\n  - {name: spin30, relay_host: %s}\n  - {name: spin31, relay_host: %s}\n",
		r.buffer, r.archive, addLogSection(t, dir, `"`+alOrigin+`"`), extra, host.URL(), host.URL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, logs := startDaemon(t, cfgPath, `msg="status page"`)
	var statusBase, addBase string
	testkit.Eventually(t, 10*time.Second, "the status and addlog addresses in the log", func() bool {
		if m := statusURL.FindStringSubmatch(logs.String()); m != nil {
			statusBase = m[1]
		}
		if m := addLogURL.FindStringSubmatch(logs.String()); m != nil {
			addBase = m[1]
		}
		return statusBase != "" && addBase != ""
	})
	for _, s := range []string{"spin30", "spin31"} {
		waitClients(t, host, s)
	}

	// Websocket traffic: UI events of each user, some frames glued by the
	// relay, a NaN response, a legacy message, a message with the id as a
	// JSON escape.
	spin := []string{"voltage", "position", "speed", "voltage_ramp", "position_ramp", "speed_ramp"}
	const frames = 240
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC).UnixMilli()
	for i := range frames {
		user, hw := privacyUsers[i%len(privacyUsers)], fmt.Sprintf("spin3%d", i%2)
		f := fmt.Sprintf(`{"user":%q,"t":%d,"exp":"spinner","hardware":%q,"course":"cie3","type":"log","payload":{"log":%q}}`,
			user, start+int64(i)*1500, hw, spin[(i*i+i/7)%len(spin)])
		switch i % 40 {
		case 7:
			f += fmt.Sprintf(`{"user": %q, "type": "response", "payload": {"score": NaN}}`, user)
		case 19:
			f += fmt.Sprintf(`{"user":%q,"t":%d,"payload":{"legacy":true}}`, user, start+int64(i)*1500+1)
		case 31:
			f += `{"user":"stu-Quokka-\u0037731","type":"request","payload":{}}`
		}
		host.Publish(hw, []byte(f), false)
	}
	// /addLog statements: the id in the query and in actor.id.
	const statements = 12
	for i := range statements {
		u := privacyUsers[i%len(privacyUsers)]
		body := fmt.Sprintf(`{"timestamp":%d,"actor":{"id":%q,"course":"ed1"},"verb":{"name":"clicked"},"object":{"id":"run-voltage-step"},"context":{"exp_id":"spin30","graph_node":"voltage_step"}}`,
			start+int64(i), u)
		if code := postStatement(t, addBase, "username="+u+"&course=ed1&hardware=spinner", body); code != http.StatusNoContent {
			t.Fatalf("statement %d: %d", i, code)
		}
	}
	get := func(path string) []byte {
		resp, err := http.Get(statusBase + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return b
	}
	// Every frame, statement and the two connections committed.
	var st status.Snapshot
	if !testkit.Poll(20*time.Second, func() bool {
		return json.Unmarshal(get("/api/status"), &st) == nil && st.Buffer.CommittedTotal == frames+statements+2
	}) {
		t.Fatalf("%d records committed, want %d", st.Buffer.CommittedTotal, frames+statements+2)
	}
	r.page, r.api, r.metrics = get("/"), get("/api/status"), get("/metrics")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("lablog run: %v\n%s", err, logs)
	}

	db, err := buffer.Open(r.buffer, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := db.Groups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if _, err := db.Scan(g, 0, ^uint64(0), func(_ uint64, rec frame.Record) error {
			r.bufferRecords = append(r.bufferRecords, rec)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	kinds := map[frame.Kind]int{}
	for _, rec := range r.bufferRecords {
		kinds[rec.Kind]++
	}
	if kinds[frame.Text] != frames || kinds[frame.Statement] != statements {
		t.Fatalf("buffer holds %v, want %d text frames and %d statements", kinds, frames, statements)
	}

	bin := lablogBinary(t)
	for _, args := range [][]string{
		{"compact", "--config", cfgPath, "--open-hours"},
		{"analytics", "--archive", r.archive, "--out", filepath.Join(dir, "analytics-out")},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("lablog %s: %v\n%s", args[0], err, out)
		}
		logs.Write(out)
	}
	r.logs = logs.String()
	paths, _ := filepath.Glob(filepath.Join(dir, "analytics-out", "*-adjacency.csv"))
	r.matrices = map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		r.matrices[filepath.Base(p)] = b
	}
	return r
}

func waitClients(t *testing.T, host interface {
	Clients(string) int
}, stream string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "lablog to join "+stream, func() bool { return host.Clients(stream) > 0 })
}

// places lists where the run left each user id: the buffer's records, the
// bytes of every file under the run's folder (buffer, archive, analytics
// output, names included), the archive's rows as DuckDB reads them, the
// page, the status API, the metrics and the log.
func (r privacyRun) places(t *testing.T, id string) []string {
	t.Helper()
	var found []string
	for _, rec := range r.bufferRecords {
		if bytes.Contains(rec.Data, []byte(id)) {
			found = append(found, "buffer record "+rec.Stream)
			break
		}
	}
	err := filepath.Walk(r.dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		if strings.Contains(path, id) {
			found = append(found, "file name "+path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(id)) {
			found = append(found, "bytes of "+path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := duckdbtest.Query(t, fmt.Sprintf(`SELECT count(*) AS n FROM read_parquet('%s/stream=*/**/*.parquet', hive_partitioning = true)
		WHERE contains(concat_ws('|', "user", raw, query, payload), '%s')`, r.archive, id))
	if n := rows[0]["n"]; fmt.Sprint(n) != "0" {
		found = append(found, fmt.Sprintf("%v archive rows", n))
	}
	for name, b := range map[string][]byte{"page": r.page, "/api/status": r.api, "/metrics": r.metrics, "log": []byte(r.logs)} {
		if bytes.Contains(b, []byte(id)) {
			found = append(found, name)
		}
	}
	return found
}

// The acceptance: with privacy.pseudonymise on, no user id is
// anywhere lablog writes or shows, and the analytics matrices are those of
// a plain run with each id replaced by its pseudonym.
func TestPseudonymisedRunKeepsNoUserID(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary twice")
	}
	plain := runPrivacyTraffic(t, "")
	// The checks can fail: the plain run has every id in every place
	// data goes.
	for _, id := range privacyUsers {
		got := strings.Join(plain.places(t, id), "; ")
		for _, want := range []string{"buffer record", "archive rows", "file name"} {
			if !strings.Contains(got, want) {
				t.Errorf("plain run: %s not found in %s (found in: %s)", id, want, got)
			}
		}
	}

	pseudo := runPrivacyTraffic(t, "privacy: {pseudonymise: true}")
	keyData, err := os.ReadFile(filepath.Join(pseudo.dir, "pseudonym-key"))
	if err != nil {
		t.Fatal(err)
	}
	key, created, err := privacy.LoadKey(filepath.Join(pseudo.dir, "pseudonym-key"), false)
	if err != nil || created {
		t.Fatalf("the key lablog made: %v", err)
	}
	p := privacy.New(key)
	if !strings.Contains(pseudo.logs, "key_id="+p.KeyID()) || !strings.Contains(string(pseudo.page), "pseudonymised at ingest, key "+p.KeyID()) ||
		!strings.Contains(string(pseudo.api), `"key_id": "`+p.KeyID()+`"`) {
		t.Errorf("the log, the page or /api/status does not name the key by its id")
	}
	for _, id := range privacyUsers {
		if where := pseudo.places(t, id); len(where) > 0 {
			t.Errorf("pseudonymised run: %s found in %s", id, strings.Join(where, "; "))
		}
		if where := pseudo.places(t, p.ID(id)); !strings.Contains(strings.Join(where, ";"), "archive rows") {
			t.Errorf("the pseudonym of %s is not in the archive: %v", id, where)
		}
	}
	secret := strings.TrimSpace(string(keyData))
	for _, part := range []string{secret, secret[:16]} {
		if where := pseudo.places(t, part); len(where) != 1 || !strings.Contains(where[0], "pseudonym-key") {
			t.Errorf("the key is somewhere else than its file: %v", where)
		}
	}
	rows := duckdbtest.Query(t, fmt.Sprintf(`SELECT DISTINCT "user" FROM read_parquet('%s/stream=*/**/*.parquet', hive_partitioning = true)
		WHERE "user" IS NOT NULL ORDER BY 1`, pseudo.archive))
	if len(rows) != len(privacyUsers) {
		t.Errorf("users in the archive: %v", rows)
	}
	for _, row := range rows {
		if !privacy.IsPseudonym(fmt.Sprint(row["user"])) {
			t.Errorf("user %v is not a pseudonym", row["user"])
		}
	}

	// The analytics answers are the plain run's with the ids mapped (a
	// user's websocket commands and statements may be graphs of their own:
	// another course or kind of hardware).
	if len(plain.matrices) < len(privacyUsers) {
		t.Fatalf("plain run: %d matrices, want at least one a user (%d)", len(plain.matrices), len(privacyUsers))
	}
	if len(pseudo.matrices) != len(plain.matrices) {
		t.Errorf("pseudonymised run: %d matrices, plain %d", len(pseudo.matrices), len(plain.matrices))
	}
	for name, want := range plain.matrices {
		mapped := name
		for _, id := range privacyUsers {
			mapped = strings.Replace(mapped, id, p.ID(id), 1)
		}
		if got, ok := pseudo.matrices[mapped]; !ok || !bytes.Equal(got, want) {
			t.Errorf("%s (plain %s) differs or is missing:\nplain:\n%s\npseudonymised:\n%s", mapped, name, want, got)
		}
	}
}

// lablog pseudonym prints what lablog run stores for an id, with the
// configured key, and never makes a key.
func TestPseudonymCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lablog.yaml")
	write := func(privacyYAML string) {
		src := fmt.Sprintf("buffer: {path: %s}\narchive: {path: %s}\n%s\nstreams:\n  - {name: spin30, relay_host: ws://127.0.0.1:1}\n",
			filepath.Join(dir, "b.db"), filepath.Join(dir, "a"), privacyYAML)
		if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	if out, err := runCmd(t, "pseudonym", "--config", cfgPath, "u-1"); err == nil || !strings.Contains(err.Error(), "privacy.pseudonymise is off") {
		t.Errorf("pseudonymise off: %v %s", err, out)
	}
	write("privacy: {pseudonymise: true}")
	keyPath := filepath.Join(dir, "pseudonym-key")
	if out, err := runCmd(t, "pseudonym", "--config", cfgPath, "u-1"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("no key: %v %s", err, out)
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Fatalf("lablog pseudonym made a key: %v", err)
	}
	key, _, err := privacy.LoadKey(keyPath, true)
	if err != nil {
		t.Fatal(err)
	}
	p := privacy.New(key)
	out, err := runCmd(t, "pseudonym", "--config", cfgPath, "u-1", "stu-Quokka-7731")
	if err != nil || out != p.ID("u-1")+"\n"+p.ID("stu-Quokka-7731")+"\n" {
		t.Errorf("got %v %q", err, out)
	}
	if _, err := runCmd(t, "pseudonym", "--config", cfgPath); !errors.Is(err, errUsage) {
		t.Errorf("no id: %v", err)
	}
}
