package dashboard

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/privacy"
)

const fixtures = "../../../../shared/fixtures/learning-analytics"

// A hand-computed graph: voltage_step -> position_step -> voltage_step ->
// voltage_step -> speed_ramp. Edges: vs->ps 1, ps->vs 1, vs->vs 1, vs->sr
// 1. In-degree (distinct predecessors, itself for a self-loop): vs 2 (ps,
// vs), ps 1, sr 1, the rest 0; over n-1 = 5.
func TestInCentralityByHand(t *testing.T) {
	e := analytics.Experiments["spinner"]
	m := analytics.NewMatrix(e.Nodes)
	idx := map[string]int{}
	for i, n := range e.Nodes {
		idx[n] = i
	}
	seq := []string{"voltage_step", "position_step", "voltage_step", "voltage_step", "speed_ramp"}
	for i := 1; i < len(seq); i++ {
		m.W[idx[seq[i-1]]][idx[seq[i]]]++
	}
	m.W[idx["voltage_step"]][idx["position_step"]] += 2 // weight is not degree
	got := inCentrality(m)
	want := map[string]float64{"voltage_step": 0.4, "position_step": 0.2, "speed_ramp": 0.2,
		"voltage_ramp": 0, "position_ramp": 0, "speed_step": 0}
	for n, w := range want {
		if math.Abs(got[n]-w) > 1e-12 {
			t.Errorf("%s: %v, want %v", n, got[n], w)
		}
	}
	g := graphOf(m, "spinner")
	if len(g.Nodes) != 6 || g.Nodes[0].ID != "voltage_step" || len(g.Edges) != 4 {
		t.Fatalf("graph %+v", g)
	}
	if e := g.Edges[0]; e.From != "voltage_step" || e.To != "voltage_step" || e.Label != "1" || e.Arrows != "to" {
		t.Errorf("first edge %+v (row by row, in node order)", e)
	}
	if e := g.Edges[1]; e.To != "position_step" || e.Weight != 3 || e.Label != "3" {
		t.Errorf("second edge %+v", e)
	}
}

// server is a dashboard handler over a live store on a new buffer, on
// loopback; add appends records to the buffer (committed, as the writer
// commits them).
type server struct {
	url string
	db  *buffer.DB
}

func newServer(t *testing.T, o Options) *server {
	t.Helper()
	store, db := openStore(t)
	if _, err := store.Seed(t.TempDir()); err != nil { // an empty archive
		t.Fatal(err)
	}
	return serve(t, store, db, o)
}

// openStore opens a live store on a new buffer.
func openStore(t *testing.T) (*analytics.Store, *buffer.DB) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(t.TempDir(), "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := analytics.OpenStore(db, analytics.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return store, db
}

// serve serves a handler of o over store on loopback.
func serve(t *testing.T, store *analytics.Store, db *buffer.DB, o Options) *server {
	t.Helper()
	o.Store, o.Logger = store, slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(New(o))
	t.Cleanup(srv.Close)
	return &server{url: srv.URL, db: db}
}

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func (s *server) statement(t *testing.T, user, course, hardware, body string) {
	t.Helper()
	q := url.Values{"username": {user}, "course": {course}, "hardware": {hardware}}
	t0 = t0.Add(time.Millisecond)
	if err := s.db.Append([]frame.Record{{Stream: "addlog-" + hardware, Received: t0, Kind: frame.Statement,
		Data: frame.StatementData(q, []byte(body))}}); err != nil {
		t.Fatal(err)
	}
}

func (s *server) clicks(t *testing.T, user, course, hardware string, nodes ...string) {
	t.Helper()
	for i, n := range nodes {
		s.statement(t, user, course, hardware, fmt.Sprintf(
			`{"timestamp":%d,"actor":{"id":%q},"verb":{"name":"clicked"},"context":{"graph_node":%q}}`, 1000+i, user, n))
	}
}

// get asks path with header Origin (if set) and decodes the answer into v.
func (s *server) get(t *testing.T, path, origin string, v any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func readFixtureGraphs(t *testing.T) analytics.Comparisons {
	t.Helper()
	c, err := analytics.LoadComparisons(filepath.Join(fixtures, "comparison_graphs"))
	if err != nil {
		t.Skipf("fixtures: %v", err)
	}
	return c
}

// Every endpoint answers a student from what was committed before the
// request, in the shapes the dashboards draw.
func TestEndpointsAnswerFromTheStore(t *testing.T) {
	courses := t.TempDir()
	if err := os.WriteFile(filepath.Join(courses, "ed1.json"), []byte(`{"name":"ed1","parameters":{"spinner":{
		"tasks":[{"readable_string":"Lab 1 Core","code_string":"spinner-ed1-1-core"},
		         {"readable_string":"Lab 2","code_string":"spinner-ed1-2"},
		         {"readable_string":"No graph","code_string":"spinner-ed1-9"}],
		"max_task_completion_value":100}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, err := LoadCourses(courses)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Options{Comparisons: readFixtureGraphs(t), Courses: cs, Location: time.UTC,
		TaskGraphs: map[string]string{"spinner-ed1-1-core": "spinner-engdes1-1-core", "spinner-ed1-2": "spinner-engdes1-2",
			"spinner-ed1-all": "spinner-engdes1-all"}})
	q := "?username=alice&course=ed1&hardware=spinner"

	var g Graph
	if resp := s.get(t, "/studentGraph"+q, "", &g); resp.StatusCode != 200 || len(g.Nodes) != 0 || len(g.Edges) != 0 || g.Hardware != "spinner" {
		t.Fatalf("before any statement: %d %+v", resp.StatusCode, g)
	}
	s.clicks(t, "alice", "ed1", "spinner", "position_step", "position_step", "speed_step", "position_step")
	s.statement(t, "alice", "ed1", "spinner", fmt.Sprintf(`{"timestamp":%d,"actor":{"id":"alice"},"verb":{"name":"session-started"}}`,
		time.Date(2026, 12, 1, 14, 7, 0, 0, time.UTC).UnixMilli()))
	s.get(t, "/studentGraph"+q, "", &g)
	if len(g.Nodes) != 6 || len(g.Edges) != 3 || g.NodeInfo.InCentrality["position_step"] != 0.4 || g.NodeInfo.InCentrality["speed_step"] != 0.2 {
		t.Errorf("student graph %+v", g)
	}

	var cmp Graph
	s.get(t, "/comparisonGraph?taskcode=spinner-ed1-1-core&username=alice&course=ed1&hardware=spinner", "", &cmp)
	want := readFixtureGraphs(t)["spinner-engdes1-1-core"]
	if len(cmp.Edges) == 0 || cmp.Edges[0].Weight != want.Weight(cmp.Edges[0].From, cmp.Edges[0].To) {
		t.Errorf("comparison graph %+v", cmp)
	}

	var tc Completion
	s.get(t, "/taskCompletion"+q, "", &tc)
	if len(tc.TaskDissimilarity) != 2 || tc.TaskDissimilarity["spinner-ed1-1-core"] < 1 || tc.TaskDissimilarity["spinner-ed1-2"] < 1 {
		t.Errorf("task completion %+v: want the two tasks with graphs, each >= 1", tc)
	}
	student := analytics.NewMatrix(analytics.Experiments["spinner"].Nodes)
	student.W[2][2], student.W[2][4], student.W[4][2] = 1, 1, 1
	core, _ := want.Over(student.Nodes)
	if d := analytics.TaskIdentificationDistance(student, core); tc.TaskDissimilarity["spinner-ed1-1-core"] != math.Max(1, math.Min(100, d)) {
		t.Errorf("core task %v, the reference's distance %v", tc.TaskDissimilarity["spinner-ed1-1-core"], d)
	}

	var ind Indicators
	s.get(t, "/otherIndicators"+q, "", &ind)
	all := readFixtureGraphs(t)["spinner-engdes1-all"]
	if te := ind.Indicators["total_edges"]; math.Abs(te-math.Min(100, 3*100/all.Total())) > 1e-9 {
		t.Errorf("total_edges %v, want %v", te, 3*100/all.Total())
	}
	if _, ok := ind.Indicators["exploration"]; !ok {
		t.Errorf("indicators %+v lack exploration", ind)
	}

	var u Usage
	s.get(t, "/usageStats"+q, "", &u)
	if u.InteractionCounts["clicked"] != 4 || u.InteractionCounts["session-started"] != 1 || len(u.SessionTimes) != 1 || u.SessionTimes[0] != "14:07" {
		t.Errorf("usage %+v", u)
	}
}

// Unknown users and kinds of hardware, missing parameters, other methods.
func TestEdgesOfTheAPI(t *testing.T) {
	s := newServer(t, Options{AllowedOrigins: []string{"https://dash.example"}})
	for _, path := range Paths {
		q := "?username=null&course=ed1&hardware=pendulum"
		if path == "/comparisonGraph" {
			q += "&taskcode=pendulum-ed1-1"
		}
		resp := s.get(t, path+q, "https://dash.example", nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" {
			t.Errorf("%s for an unknown user: %d %q %s", path, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), body)
		}
		for _, empty := range []string{`"nodes":[]`, `"task_dissimilarity":{}`, `"indicators":{}`, `"interactionCounts":{}`} {
			if strings.Contains(string(body), strings.SplitN(empty, ":", 2)[0]) && !strings.Contains(string(body), empty) {
				t.Errorf("%s: %s, want %s", path, body, empty)
			}
		}
		if resp := s.get(t, path+"?username=a&course=b&hardware=bike", "", nil); resp.StatusCode != 400 {
			t.Errorf("%s unknown hardware: %d", path, resp.StatusCode)
		} else if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), `pendulum, spinner; got "bike"`) {
			t.Errorf("%s unknown hardware says %q", path, body)
		}
		if resp := s.get(t, path+q, "https://evil.example", nil); resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s answers another origin", path)
		}
		resp, err := http.Post(s.url+path+q, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d", path, resp.StatusCode)
		}
	}
	if resp := s.get(t, "/comparisonGraph?username=a&course=b&hardware=spinner", "", nil); resp.StatusCode != 400 {
		t.Errorf("comparisonGraph without taskcode: %d", resp.StatusCode)
	}
	// Without a course config, a course's tasks are its comparison graphs;
	// an empty student is "have you connected yet?" (the maximum).
	s2 := newServer(t, Options{Comparisons: readFixtureGraphs(t)})
	var tc Completion
	s2.get(t, "/taskCompletion?username=nobody&course=engdes1&hardware=pendulum", "", &tc)
	if len(tc.TaskDissimilarity) != 5 || tc.TaskDissimilarity["pendulum-engdes1-2"] != DefaultMaxTaskCompletion {
		t.Errorf("task completion of an empty student %+v", tc)
	}
}

// With a credential required, a caller without it gets 401 and no data.
func TestCredentialRequired(t *testing.T) {
	s := newServer(t, Options{Authorize: func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == "dash" && p == "pw"
	}})
	if resp := s.get(t, "/usageStats?username=a&course=b&hardware=spinner", "", nil); resp.StatusCode != 401 {
		t.Errorf("no credential: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", s.url+"/usageStats?username=a&course=b&hardware=spinner", nil)
	req.SetBasicAuth("dash", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with the credential: %d", resp.StatusCode)
	}
}

func TestLoadCoursesRefusesWhatIsNoCourse(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":      `{`,
		"no name":       `{"parameters":{}}`,
		"task, no code": `{"name":"x","parameters":{"spinner":{"tasks":[{"readable_string":"a"}]}}}`,
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCourses(dir); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	if cs, err := LoadCourses(""); err != nil || len(cs) != 0 {
		t.Errorf("no folder: %v %v", cs, err)
	}
}

// With pseudonymised ids the store holds pseudonyms; a dashboard asks
// with the student's own id and gets their answers.
func TestPseudonymisedUserIDs(t *testing.T) {
	ps := privacy.New([]byte("0123456789abcdef0123456789abcdef"))
	s := newServer(t, Options{UserID: ps.ID})
	s.clicks(t, ps.ID("alice"), "ed1", "spinner", "voltage_step", "speed_step")
	var g Graph
	s.get(t, "/studentGraph?username=alice&course=ed1&hardware=spinner", "", &g)
	if len(g.Edges) != 1 || g.Edges[0].To != "speed_step" {
		t.Errorf("alice's graph, asked by her id: %+v", g)
	}
	s.get(t, "/studentGraph?username="+ps.ID("alice")+"&course=ed1&hardware=spinner", "", &g)
	if len(g.Edges) != 0 {
		t.Errorf("asked by the pseudonym itself: %+v, want nothing (it is not a student's id)", g)
	}
}

// Until the store holds every record (a new store before it read the
// archive), every endpoint says so with 503 and Retry-After, at once.
func TestNotReadyIsSaid(t *testing.T) {
	store, db := openStore(t)
	s := serve(t, store, db, Options{})
	for _, path := range Paths {
		resp := s.get(t, path+"?username=a&course=b&hardware=spinner&taskcode=x", "", nil)
		if path == "/comparisonGraph" {
			if resp.StatusCode != 200 {
				t.Errorf("%s needs no student: %d", path, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s before the archive is read: %d, Retry-After %q", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if _, err := store.Seed(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if resp := s.get(t, "/usageStats?username=a&course=b&hardware=spinner", "", nil); resp.StatusCode != 200 {
		t.Errorf("once read: %d", resp.StatusCode)
	}
}
