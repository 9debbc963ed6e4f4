package analytics

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/practable/lablog/internal/record/frame"
)

// The reference's feedback form: states and the subjects every course has.
var (
	positiveStates = []string{"Engaged", "Curious", "Delighted"}
	negativeStates = []string{"Bored", "Confused", "Frustrated", "Surprised", "Anxious"}
	baseSubjects   = []string{"Workbook", "Remote work", "Hardware", "UI", "LA", "Other"}
	courseSubjects = map[string][]string{
		"cie3":    {"spinner-cie3-1-2", "spinner-cie3-3", "spinner-cie3-4"},
		"engdes1": {"pendulum-engdes1-1", "pendulum-engdes1-2"},
	}
)

// classifyFeedback reads a feedback message {payload: {state, subject}} as
// the reference's feedback table did; unknown states or subjects are
// ignored (the reference's table had no cell for them).
func (st *Stats) classifyFeedback(m Message) verdict {
	state, subject := frame.StringField(m.Payload, "state"), frame.StringField(m.Payload, "subject")
	if m.User == nil || m.Exp == nil || m.Course == nil || state == nil || subject == nil ||
		!slices.Contains(positiveStates, *state) && !slices.Contains(negativeStates, *state) ||
		!slices.Contains(baseSubjects, *subject) && !slices.Contains(courseSubjects[*m.Course], *subject) {
		st.FeedbackIgnored++
		return verdict{}
	}
	st.Feedback++
	return verdict{kind: vFeedback, key: Key{User: *m.User, Exp: *m.Exp, Course: *m.Course}, feedback: [2]string{*state, *subject}}
}

// Enjoyment is the reference's enjoyment: positive feedback minus negative
// feedback, over every subject; 0 without feedback.
func Enjoyment(feedback map[[2]string]int) int {
	n := 0
	for k, c := range feedback {
		switch {
		case slices.Contains(positiveStates, k[0]):
			n += c
		case slices.Contains(negativeStates, k[0]):
			n -= c
		}
	}
	return n
}

// TaskDistance is the reference's task distance from the student graph a
// to the comparison b (both over the same nodes, in the same order), a
// dissimilarity >= 0: each edge b has and a lacks costs missing, each edge
// a has and b lacks costs extra, self-loops loopFactor times as much;
// edges in both with different weights add the mean of their weight
// differences (linear in (a-b)/b, capped at upperMax and lowerMax). An
// empty student graph gives NaN.
func TaskDistance(a, b *Matrix, missing, extra, loopFactor, upperMax, lowerMax float64) float64 {
	if a.Total() == 0 {
		return math.NaN()
	}
	var d, diffSum float64
	diffCount := 0
	for i := range a.W {
		for j := range a.W[i] {
			x, y := a.W[i][j], b.W[i][j]
			loop := 1.0
			if i == j {
				loop = loopFactor
			}
			switch {
			case x == 0 && y != 0:
				d += loop * missing
			case x != 0 && y == 0:
				d += loop * extra
			case x != y:
				diffCount++
				diffSum += weightDifference(x, y, missing, extra, upperMax, lowerMax)
			}
		}
	}
	if diffCount > 0 {
		d += diffSum / float64(diffCount)
	}
	return d
}

func weightDifference(x, y, missing, extra, upperMax, lowerMax float64) float64 {
	norm := (x - y) / y
	switch {
	case norm >= 0 && norm <= upperMax:
		return extra * norm / upperMax
	case norm > upperMax:
		return extra
	case norm < 0 && norm >= lowerMax:
		return missing * math.Abs(norm) / math.Abs(lowerMax)
	}
	return missing
}

// The reference's models: task identification weighs missing edges (10)
// over extra ones (1); exploration rewards only extra ones (0, 10).
const (
	loopFactor = 2
	upperMax   = 2
	lowerMax   = -1
)

// TaskIdentificationDistance is TaskDistance with the reference's task model.
func TaskIdentificationDistance(a, b *Matrix) float64 {
	return TaskDistance(a, b, 10, 1, loopFactor, upperMax, lowerMax)
}

// ExplorationDistance is TaskDistance with the reference's exploration model.
func ExplorationDistance(a, b *Matrix) float64 {
	return TaskDistance(a, b, 0, 10, loopFactor, upperMax, lowerMax)
}

// GED is the reference's graph edit distance: the sum of the absolute
// differences of the weights.
func GED(a, b *Matrix) float64 {
	var s float64
	for i := range a.W {
		for j := range a.W[i] {
			s += math.Abs(a.W[i][j] - b.W[i][j])
		}
	}
	return s
}

// TaskFeedback lists where the student graph a falls short of the
// comparison b: nodes never run (hardware) or run fewer times
// (hardware_freq) than in b, and transitions never made (transition) or
// made fewer times (transition_freq), in row-major order as the reference.
type TaskFeedback struct {
	Hardware       []string `json:"hardware"`
	HardwareFreq   []string `json:"hardware_freq"`
	Transition     []string `json:"transition"`
	TransitionFreq []string `json:"transition_freq"`
}

// Feedback computes TaskFeedback.
func Feedback(a, b *Matrix) TaskFeedback {
	f := TaskFeedback{Hardware: []string{}, HardwareFreq: []string{}, Transition: []string{}, TransitionFreq: []string{}}
	for i := range a.W {
		for j := range a.W[i] {
			x, y := a.W[i][j], b.W[i][j]
			edge := a.Nodes[i] + " to " + a.Nodes[j]
			switch {
			case x == 0 && y != 0 && i == j:
				f.Hardware = append(f.Hardware, a.Nodes[j])
			case x == 0 && y != 0:
				f.Transition = append(f.Transition, edge)
			case x-y < 0 && i == j:
				f.HardwareFreq = append(f.HardwareFreq, a.Nodes[j])
			case x-y < 0:
				f.TransitionFreq = append(f.TransitionFreq, edge)
			}
		}
	}
	return f
}

// Centroid is the reference's centroid: the mean of the node positions
// weighted by each node's in-weight; NaN, NaN for an empty graph.
func Centroid(m *Matrix, layout map[string]Point, nodes []string) [2]float64 {
	var mass, x, y float64
	for _, n := range nodes {
		w := m.InWeight(n)
		mass += w
		x += w * layout[n].X
		y += w * layout[n].Y
	}
	if mass > 0 {
		return [2]float64{x / mass, y / mass}
	}
	return [2]float64{math.NaN(), math.NaN()}
}

// centroidTasks are the comparison graphs the reference drew centroids for,
// per exp-course: name in the response -> comparison graph.
var centroidTasks = map[string][][2]string{
	"spinner-cie3": {{"task1", "spinner-cie3-1-2"}, {"task3", "spinner-cie3-3"}, {"task4", "spinner-cie3-4"}, {"all", "spinner-cie3-all"}},
	"spinner-engdes1": {{"task1core", "spinner-engdes1-1-core"}, {"task1ext", "spinner-engdes1-1-ext"},
		{"task2", "spinner-engdes1-2"}, {"all", "spinner-engdes1-all"}},
	"pendulum-engdes1": {{"task1core", "pendulum-engdes1-1-core"}, {"task1ext", "pendulum-engdes1-1-ext"},
		{"task2", "pendulum-engdes1-2"}, {"all", "pendulum-engdes1-all"}},
}

// Comparisons are the comparison graphs of a folder, by name (file name
// without .csv).
type Comparisons map[string]*Matrix

// LoadComparisons reads every *.csv of dir. A missing dir is no error: no
// comparisons.
func LoadComparisons(dir string) (Comparisons, error) {
	c := Comparisons{}
	if dir == "" {
		return c, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("comparison graphs: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".csv") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("comparison graphs: %w", err)
		}
		m, err := ReadCSV(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("comparison graph %s: %w", e.Name(), err)
		}
		c[strings.TrimSuffix(e.Name(), ".csv")] = m
	}
	return c, nil
}

// For lists the comparison graphs of exp and course as the reference
// picked them (every name starting with "exp-course"), sorted by name,
// each laid over the experiment's nodes.
func (c Comparisons) For(exp, course string) []NamedMatrix {
	e := Experiments[exp]
	var out []NamedMatrix
	prefix := exp + "-" + course
	for name, m := range c {
		if strings.HasPrefix(name, prefix) && e != nil {
			over, _ := m.Over(e.Nodes)
			out = append(out, NamedMatrix{name, over})
		}
	}
	slices.SortFunc(out, func(a, b NamedMatrix) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// NamedMatrix is a comparison graph and its name.
type NamedMatrix struct {
	Name   string
	Matrix *Matrix
}

// Number is a float that marshals NaN and infinities, which JSON cannot
// hold, as null.
type Number float64

// MarshalJSON implements json.Marshaler.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return fmt.Appendf(nil, "%v", f), nil
}

// Indicators are one student graph's indicators, as the reference's
// responses gave them (NaN, and infinity, as null).
type Indicators struct {
	User               string                  `json:"user"`
	Exp                string                  `json:"exp"`
	Course             string                  `json:"course"`
	Commands           int                     `json:"commands"`
	Edges              Number                  `json:"edges"`
	TaskIdentification map[string]Number       `json:"task_identification"`
	GraphEditDistance  map[string]Number       `json:"graph_edit_distance"`
	TaskFeedback       map[string]TaskFeedback `json:"task_feedback"`
	Exploration        Number                  `json:"exploration"`
	TotalEdges         Number                  `json:"total_edges"`
	Centroids          map[string][2]Number    `json:"centroids"`
	Enjoyment          int                     `json:"enjoyment"`
}

// Compute works out g's indicators against the comparison graphs.
func (c Comparisons) Compute(g Graph) Indicators {
	k := g.Key
	ind := Indicators{User: k.User, Exp: k.Exp, Course: k.Course, Commands: g.Commands, Edges: Number(g.Matrix.Total()),
		TaskIdentification: map[string]Number{}, GraphEditDistance: map[string]Number{},
		TaskFeedback: map[string]TaskFeedback{}, Centroids: map[string][2]Number{},
		Enjoyment: Enjoyment(g.Feedback)}
	for _, cm := range c.For(k.Exp, k.Course) {
		ind.TaskIdentification[cm.Name] = Number(TaskIdentificationDistance(g.Matrix, cm.Matrix))
		ind.GraphEditDistance[cm.Name] = Number(GED(g.Matrix, cm.Matrix))
		ind.TaskFeedback[cm.Name] = Feedback(g.Matrix, cm.Matrix)
	}
	e := Experiments[k.Exp]
	all := c[k.Exp+"-"+k.Course+"-all"]
	if all != nil {
		all, _ = all.Over(e.Nodes)
		ind.Exploration = Number(ExplorationDistance(g.Matrix, all))
		ind.TotalEdges = Number(g.Matrix.Total() * 100 / all.Total())
	} else {
		ind.TotalEdges = Number(math.NaN()) // the reference has no -all graph to divide by
	}
	point := func(p [2]float64) [2]Number { return [2]Number{Number(p[0]), Number(p[1])} }
	if tasks, ok := centroidTasks[k.Exp+"-"+k.Course]; ok {
		ind.Centroids["student"] = point(Centroid(g.Matrix, e.Layout, e.LayoutOrder))
		for _, t := range tasks {
			if m := c[t[1]]; m != nil {
				ind.Centroids[t[0]] = point(Centroid(m, e.Layout, e.LayoutOrder))
			}
		}
	} else {
		// The reference's answer for any other exp-course.
		for _, name := range []string{"student", "task1", "task3", "task4", "all"} {
			ind.Centroids[name] = [2]Number{}
		}
	}
	return ind
}
