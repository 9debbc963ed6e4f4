// Package dashboard answers what the students' learning-analytics
// dashboards ask the analytics ("taskcompare") host for: a student's
// transition graph, a task's comparison graph, indicators, task
// completion and usage statistics, from the live analytics store. Every
// endpoint is a GET that changes nothing; no endpoint lists users, so a
// user's answers reach only a caller who already has the user id.
package dashboard

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/practable/lablog/internal/analytics"
	"github.com/practable/lablog/internal/platform/httpserve"
)

// Store is what the handler reads: the live analytics store.
type Store interface {
	// Fresh makes what is read next include every record committed
	// before the call.
	Fresh() error
	Student(analytics.Key) (analytics.Student, error)
}

// Options configure the handler.
type Options struct {
	Store Store
	// Comparisons are the comparison graphs, by name (file name without
	// .csv); TaskGraphs names the graph of a task code where the two
	// differ (course configs' codes change between years, graphs do not).
	Comparisons analytics.Comparisons
	TaskGraphs  map[string]string
	Courses     map[string]Course // course configs, by name
	// UserID maps a request's username to the id lablog stores: the
	// pseudonym, when privacy.pseudonymise is on (nil: as given).
	UserID func(string) string
	// Location is the time zone of usageStats' session_times (nil: the
	// machine's).
	Location       *time.Location
	AllowedOrigins []string // dashboard origins; "*" allows any
	// Authorize, when set, must accept a request (e.g. its Basic
	// credential); the dashboards send none, so it is for callers behind
	// a proxy that adds one.
	Authorize func(*http.Request) bool
	Logger    *slog.Logger
}

// Handler serves, each as GET ?username=&course=&hardware=:
//
//	/studentGraph      the student's transition graph
//	/comparisonGraph   a task's expected graph (&taskcode=)
//	/otherIndicators   total_edges and exploration, in percent
//	/taskCompletion    the task dissimilarity for each task of the course
//	/usageStats        interaction counts and session start times
type Handler struct {
	opts    Options
	origins httpserve.Origins
	mux     *http.ServeMux
}

// Paths are the endpoints the handler serves.
var Paths = []string{"/studentGraph", "/comparisonGraph", "/otherIndicators", "/taskCompletion", "/usageStats"}

// New makes the handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	h := &Handler{opts: o, origins: httpserve.NewOrigins(o.AllowedOrigins), mux: http.NewServeMux()}
	answers := map[string]func(q query) (any, error){
		"/studentGraph":    h.studentGraph,
		"/comparisonGraph": h.comparisonGraph,
		"/otherIndicators": h.otherIndicators,
		"/taskCompletion":  h.taskCompletion,
		"/usageStats":      h.usageStats,
	}
	for _, path := range Paths {
		h.mux.HandleFunc("GET "+path, h.serve(answers[path]))
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// query is a request's parameters.
type query struct {
	key      analytics.Key
	exp      *analytics.Experiment
	taskCode string
}

// badRequest says what the caller got wrong.
type badRequest string

func (e badRequest) Error() string { return string(e) }

func (h *Handler) serve(answer func(query) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.origins.Allow(w, r)
		if h.opts.Authorize != nil && !h.opts.Authorize(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="lablog"`)
			http.Error(w, "a valid Basic credential is required", http.StatusUnauthorized)
			return
		}
		v := r.URL.Query()
		hw := v.Get("hardware")
		exp := analytics.Experiments[hw]
		if exp == nil {
			http.Error(w, "hardware must be one of "+kinds()+"; got "+quote(hw), http.StatusBadRequest)
			return
		}
		user := v.Get("username")
		if h.opts.UserID != nil {
			user = h.opts.UserID(user)
		}
		q := query{key: analytics.Key{User: user, Exp: hw, Course: v.Get("course")}, exp: exp,
			taskCode: v.Get("taskcode")}
		body, err := answer(q)
		var bad badRequest
		switch {
		case errors.As(err, &bad):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case errors.Is(err, analytics.ErrBehind):
			w.Header().Set("Retry-After", "10")
			http.Error(w, "lablog is still counting its records for the dashboards (after a restart that lost its "+
				"analytics state, or a new version); try again shortly", http.StatusServiceUnavailable)
			return
		case err != nil:
			h.opts.Logger.Error("dashboard: cannot answer", "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "5")
			http.Error(w, "the analytics store cannot be read now; try again shortly", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(body)
	}
}

// student is q's student, including every record committed before now.
func (h *Handler) student(q query) (analytics.Student, error) {
	if err := h.opts.Store.Fresh(); err != nil {
		return analytics.Student{}, err
	}
	return h.opts.Store.Student(q.key)
}

func (h *Handler) studentGraph(q query) (any, error) {
	s, err := h.student(q)
	if err != nil {
		return nil, err
	}
	return graphOf(s.Matrix, q.key.Exp), nil
}

func (h *Handler) comparisonGraph(q query) (any, error) {
	if q.taskCode == "" {
		return nil, badRequest("taskcode is required")
	}
	m := h.comparison(q.taskCode, q.exp)
	if m == nil {
		return emptyGraph(q.key.Exp), nil
	}
	return graphOf(m, q.key.Exp), nil
}

// comparison is the comparison graph of a task code (or graph name) laid
// over exp's nodes; nil when there is none.
func (h *Handler) comparison(code string, exp *analytics.Experiment) *analytics.Matrix {
	name := code
	if mapped, ok := h.opts.TaskGraphs[code]; ok {
		name = mapped
	}
	m := h.opts.Comparisons[name]
	if m == nil {
		return nil
	}
	over, _ := m.Over(exp.Nodes)
	return over
}

// Indicators is /otherIndicators' answer.
type Indicators struct {
	Indicators map[string]float64 `json:"indicators"`
}

// otherIndicators gives the 2023 server's total_edges (the student's
// transitions as a percentage of those of the course's "-all" graph) and
// exploration (its exploration distance from that graph), both capped to
// 0-100; without an "-all" graph there is nothing to measure against and
// the answer holds neither.
func (h *Handler) otherIndicators(q query) (any, error) {
	s, err := h.student(q)
	if err != nil {
		return nil, err
	}
	out := Indicators{Indicators: map[string]float64{}}
	all := h.comparison(q.key.Exp+"-"+q.key.Course+"-all", q.exp)
	if all == nil || all.Total() == 0 {
		return out, nil
	}
	out.Indicators["total_edges"] = percent(s.Matrix.Total() * 100 / all.Total())
	out.Indicators["exploration"] = percent(analytics.ExplorationDistance(s.Matrix, all))
	return out, nil
}

// percent caps v to 0-100; NaN (an empty student graph) is 0.
func percent(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(0, math.Min(100, v))
}

// Completion is /taskCompletion's answer.
type Completion struct {
	TaskDissimilarity map[string]float64 `json:"task_dissimilarity"`
}

// minDissimilarity is the least value served: the dashboards draw no bar
// for 0, a graph that matches its task exactly.
const minDissimilarity = 1

// taskCompletion gives, for each task of the course (that has a
// comparison graph), the 2023 server's task-identification distance of
// the student's graph from the task's, within [1, max]: an empty student
// graph is max, which the dashboards read as "have you connected yet?".
func (h *Handler) taskCompletion(q query) (any, error) {
	s, err := h.student(q)
	if err != nil {
		return nil, err
	}
	codes, max := h.tasks(q.key.Course, q.key.Exp)
	out := Completion{TaskDissimilarity: map[string]float64{}}
	for _, code := range codes {
		m := h.comparison(code, q.exp)
		if m == nil {
			continue
		}
		d := analytics.TaskIdentificationDistance(s.Matrix, m)
		if math.IsNaN(d) {
			d = max
		}
		out.TaskDissimilarity[code] = math.Max(minDissimilarity, math.Min(max, d))
	}
	return out, nil
}

// Usage is /usageStats' answer.
type Usage struct {
	InteractionCounts map[string]int64 `json:"interactionCounts"`
	SessionTimes      []string         `json:"session_times"`
}

// usageStats counts the student's interactions (statements by verb,
// websocket commands by name) and gives the local start time (HH:MM) of
// each session, in order.
func (h *Handler) usageStats(q query) (any, error) {
	s, err := h.student(q)
	if err != nil {
		return nil, err
	}
	out := Usage{InteractionCounts: s.Usage, SessionTimes: []string{}}
	if out.InteractionCounts == nil {
		out.InteractionCounts = map[string]int64{}
	}
	for _, t := range s.Sessions {
		out.SessionTimes = append(out.SessionTimes, t.In(h.opts.Location).Format("15:04"))
	}
	return out, nil
}

// kinds lists the kinds of hardware there are graphs for.
func kinds() string {
	names := slices.Sorted(maps.Keys(analytics.Experiments))
	return strings.Join(names, ", ")
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }
