package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/testkit"
)

const (
	alUser, alPass = "spinner-ui", "pa55-w0rd"
	alOrigin       = "https://booking.lab.example"
)

var addLogURL = regexp.MustCompile(`msg="addlog listening" url=(http://\S+)`)

// addLogSection writes a credentials file into dir and returns the YAML of
// an addlog section listening on loopback for origins.
func addLogSection(t *testing.T, dir string, origins ...string) string {
	t.Helper()
	creds := filepath.Join(dir, "addlog-credentials")
	if err := os.WriteFile(creds, []byte(alUser+":"+alPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("addlog: {listen: \"127.0.0.1:0\", credentials_file: %s, allowed_origins: [%s]}", creds, strings.Join(origins, ", "))
}

// postStatement posts body as a lab UI does and returns the status.
func postStatement(t *testing.T, base, query, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/addLog?"+query, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(alUser, alPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// statementBodies are statements as the UIs send them, and what they send
// that is not: not JSON, another shape, non-ASCII, nulls.
var statementBodies = []string{
	`{"timestamp":1733000000000,"level":"INFO","type":"analytics","version":"1.1","actor":{"id":"u-4f2c","course":"ed1"},"verb":{"name":"clicked","definition":"https://lh.example/verbs/clicked"},"object":{"id":"run-voltage-step","parent":"controls","ui":"spinner-3.0"},"context":{"event_type":"click","x":10,"y":20,"exp_id":"spin30","session-expired":false,"graph_node":"voltage_step"}}`,
	`{"timestamp":1733000000500,"actor":{"id":"u-4f2c"},"verb":{"name":"changed"},"object":{"id":"voltage","value":"ΔV = 3 ✓"},"context":{"exp_id":"spin30"}}`,
	`{"actor":null,"verb":{"name":null}}`,
	`not json at all`,
	`[1,2,3]`,
}

// A lab with only today's UIs: lablog run with an addlog section and no
// stream records every statement, shows the counts, serves /healthz on
// the ingest listener, and archives each statement byte for byte.
func TestAddLogEndToEnd(t *testing.T) {
	dir := t.TempDir()
	d := runInProcessIn(t, dir, nil, "", addLogSection(t, dir, `"`+alOrigin+`"`))
	var base string
	testkit.Eventually(t, 10*time.Second, "the addlog address in the log", func() bool {
		m := addLogURL.FindStringSubmatch(d.logs.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	for i, b := range statementBodies {
		q := fmt.Sprintf("username=student-%d&course=ed1&hardware=spinner", i%2)
		if code := postStatement(t, base, q, b); code != http.StatusNoContent {
			t.Fatalf("statement %d: %d", i, code)
		}
	}
	if code := postStatement(t, base, "username=p&course=none&hardware=pendulum", statementBodies[0]); code != http.StatusNoContent {
		t.Fatalf("pendulum statement: %d", code)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "recording") {
		t.Errorf("/healthz on the addlog listener: %d %q", resp.StatusCode, body)
	}
	st := d.status(t)
	if st.AddLog == nil || st.AddLog.Total != int64(len(statementBodies)+1) || st.AddLog.LastStatement == nil {
		t.Fatalf("/api/status addlog: %+v", st.AddLog)
	}
	fams := scrapeMetrics(t, d)
	if f := fams["lablog_addlog_statements_total"]; f == nil || len(f.Metric) < 3 {
		t.Errorf("lablog_addlog_statements_total: %v", f)
	}
	code, html := d.get(t, "/")
	for _, want := range []string{"Statements (/addLog)", "6 statements since start", "pendulum: 1 clicked",
		"spinner: 3 (no verb), 1 changed, 1 clicked", "0 unauthorized, 0 too large, 0 rate-limited, 0 refused"} {
		if code != 200 || !strings.Contains(string(html), want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	code, page := d.get(t, "/api/status")
	for _, secret := range []string{alPass, "student-0", "u-4f2c"} {
		if code != 200 || strings.Contains(string(page), secret) || strings.Contains(d.logs.String(), secret) || strings.Contains(string(html), secret) {
			t.Errorf("%q appears in /api/status, the page or the log", secret)
		}
	}
	d.stop(t)

	if _, err := runCmd(t, "compact", "--config", filepath.Join(dir, "lablog.yaml"), "--open-hours"); err != nil {
		t.Fatal(err)
	}
	if files, problems := archive.VerifyTree(d.archive); files != 2 || len(problems) > 0 {
		t.Fatalf("verify: %d files, %v", files, problems)
	}
	rows := duckdbtest.Query(t, fmt.Sprintf(`SELECT stream, seq, "user", course, hardware, exp, verb, graph_node, query, raw, error
		FROM read_parquet('%s/**/*.parquet', hive_partitioning = true) ORDER BY stream DESC, seq`, d.archive))
	if len(rows) != len(statementBodies)+1 {
		t.Fatalf("DuckDB read %d rows: %v", len(rows), rows)
	}
	for i, b := range statementBodies {
		r := rows[i]
		if r["stream"] != "addlog-spinner" || r["raw"] != b || r["hardware"] != "spinner" || r["course"] != "ed1" ||
			r["user"] != fmt.Sprintf("student-%d", i%2) {
			t.Errorf("row %d: %v", i, r)
		}
	}
	if r := rows[0]; r["verb"] != "clicked" || r["graph_node"] != "voltage_step" || r["exp"] != "spin30" || r["error"] != nil {
		t.Errorf("indexed fields: %v", r)
	}
	if r := rows[3]; r["error"] == nil || !strings.HasPrefix(r["error"].(string), "not JSON") {
		t.Errorf("not JSON kept with its error: %v", r)
	}
	if r := rows[len(rows)-1]; r["stream"] != "addlog-pendulum" || r["query"] != "course=none&hardware=pendulum&username=p" {
		t.Errorf("pendulum row: %v", r)
	}
}
