package analytics

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The reference test-suite's vectors (test_analytics.py, test_analytics_ged.py
// of dpreid/learning-analytics-server), on the inputs the fixtures hold.

var spinnerNodes = Experiments["spinner"].Nodes

func matrixOf(nodes []string, w [][]float64) *Matrix {
	m := NewMatrix(nodes)
	for i := range w {
		copy(m.W[i], w[i])
	}
	return m
}

func readMatrix(t *testing.T, path string) *Matrix {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testDataGraphs reads the reference test-suite's data folder as the old
// client's folder.
func testDataGraphs(t *testing.T) (map[Key]Graph, *Builder) {
	t.Helper()
	b := NewBuilder()
	skipped, err := b.ReadLogsDir(fixtureDir(t, "test/data"), Window{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"spinner-compare-1.csv", "spinner-compare-2.csv", "spinner-compare-4.csv", "spinner-compare-same.csv"}
	if !reflect.DeepEqual(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
	out := map[Key]Graph{}
	for _, g := range b.Matrices() {
		out[g.Key] = g
	}
	return out, b
}

func TestReferenceTaskDistanceVectors(t *testing.T) {
	ad1 := matrixOf(spinnerNodes, [][]float64{{1, 0, 1, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 2, 1, 0, 0}, {0, 0, 1, 3, 0, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}})
	ad2 := matrixOf(spinnerNodes, [][]float64{{1, 1, 1, 0, 0, 0}, {0, 0, 0, 0, 0, 0}, {1, 0, 2, 1, 0, 0}, {0, 0, 1, 3, 0, 0}, {0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0}})
	if d := TaskIdentificationDistance(ad1, ad2); d != 20 {
		t.Errorf("test_compare_arrays: %v, want 20", d)
	}

	graphs, _ := testDataGraphs(t)
	a, ok := graphs[Key{"test", "spinner", "engdes1"}]
	if !ok {
		t.Fatalf("no graph for user test; have %v", graphs)
	}
	data := fixtureDir(t, "test/data")
	for _, tc := range []struct {
		name    string
		compare *Matrix
		want    float64
	}{
		{"test_distance_zero", a.Matrix, 0},
		{"test_distance_zero3", readMatrix(t, filepath.Join(data, "spinner-compare-same.csv")), 0},
		{"test_distance_missing", readMatrix(t, filepath.Join(data, "spinner-compare-1.csv")), 20},
		{"test_distance_extra", readMatrix(t, filepath.Join(data, "spinner-compare-2.csv")), 3},
	} {
		if d := TaskIdentificationDistance(a.Matrix, tc.compare); d != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, d, tc.want)
		}
	}
	same := readMatrix(t, filepath.Join(data, "spinner-compare-same.csv"))
	if d := TaskIdentificationDistance(same, same); d != 0 {
		t.Errorf("test_distance_zero2: %v, want 0", d)
	}
	empty := NewMatrix(spinnerNodes)
	if d := TaskIdentificationDistance(empty, same); !math.IsNaN(d) {
		t.Errorf("empty student graph: %v, want NaN", d)
	}
}

func TestReferenceGEDVectors(t *testing.T) {
	for _, tc := range []struct {
		user, comparison [][]float64
		want             float64
	}{
		{[][]float64{{1}}, [][]float64{{0}}, 1},
		{[][]float64{{1, 0}}, [][]float64{{0, 1}}, 2},
		{[][]float64{{10, 0, 4}, {5, 0, 0}, {0, 0, 0, 6}, {}, {0, 0, 20}}, [][]float64{{5, 1}, {4}, {}, {}, {0, 0, 21}}, 18},
	} {
		if d := GED(matrixOf(spinnerNodes, tc.user), matrixOf(spinnerNodes, tc.comparison)); d != tc.want {
			t.Errorf("GED(%v, %v) = %v, want %v", tc.user, tc.comparison, d, tc.want)
		}
	}
}

func TestReferenceTaskFeedbackAndTotalEdges(t *testing.T) {
	graphs, _ := testDataGraphs(t)
	a := graphs[Key{"test", "spinner", "engdes1"}].Matrix
	comps, err := LoadComparisons(fixtureDir(t, "comparison_graphs"))
	if err != nil {
		t.Fatal(err)
	}
	none := []string{}
	for _, tc := range []struct {
		name, task string
		student    *Matrix
		want       TaskFeedback
	}{
		{"test_feedback_0", "spinner-cie3-1-2", a, TaskFeedback{none, []string{"voltage_step"}, none, none}},
		{"test_feedback_1", "spinner-cie3-1-2-3", a, TaskFeedback{none, []string{"voltage_step"}, none, none}},
		{"test_feedback_2", "spinner-cie3-all", a, TaskFeedback{none, []string{"voltage_step", "position_step"}, none, none}},
		{"test_feedback_3", "spinner-cie3-3", readMatrix(t, filepath.Join(fixtureDir(t, "test/data"), "spinner-compare-4.csv")),
			TaskFeedback{[]string{"position_step", "position_ramp"}, none, []string{"position_step to position_ramp"}, none}},
	} {
		if got := Feedback(tc.student, comps[tc.task]); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}

	ind := comps.Compute(Graph{Key: Key{"test", "spinner", "cie3"}, Matrix: a})
	if float64(ind.TotalEdges) != 900.0/439 {
		t.Errorf("test_total_edges_0: %v, want 900/439", ind.TotalEdges)
	}
	ind = comps.Compute(Graph{Key: Key{"x", "spinner", "cie3"}, Matrix: comps["spinner-cie3-1-2"]})
	if float64(ind.TotalEdges) != 40300.0/439 {
		t.Errorf("test_total_edges_1: %v, want 40300/439", ind.TotalEdges)
	}
	want := []string{"spinner-cie3-1-2", "spinner-cie3-1-2-3", "spinner-cie3-1-2-4", "spinner-cie3-3", "spinner-cie3-3-4",
		"spinner-cie3-4", "spinner-cie3-all", "spinner-cie3-mean-21-22"}
	var got []string
	for name := range ind.TaskIdentification {
		got = append(got, name)
	}
	if len(got) != len(want) {
		t.Errorf("task identification against %v, want every spinner-cie3 graph %v", got, want)
	}
	for _, name := range want {
		if _, ok := ind.TaskIdentification[name]; !ok {
			t.Errorf("task identification lacks %s", name)
		}
	}
}

func TestReferenceLogsFolder(t *testing.T) {
	graphs, b := testDataGraphs(t)
	// A user split over two hardware files: ordered by t across both.
	g := graphs[Key{"53a6788c-e689-48d4-9231-c2fbd23df009", "spinner", "engdes1"}]
	if g.Matrix == nil {
		t.Fatal("no graph for the two-hardware user")
	}
	if w := g.Matrix.Weight("voltage_step", "voltage_ramp"); w != 10 {
		t.Errorf("voltage_step->voltage_ramp %v, want 10", w)
	}
	if w := g.Matrix.Weight("voltage_ramp", "voltage_step"); w != 9 {
		t.Errorf("voltage_ramp->voltage_step %v, want 9", w)
	}
	if g.Matrix.Total() != 19 {
		t.Errorf("total %v, want 19", g.Matrix.Total())
	}
	// Legacy {user, t, payload} lines count, for the user the file name says.
	legacy := graphs[Key{"test2", "spinner", "engdes1"}]
	if legacy.Commands != 10 || legacy.Matrix.Weight("position_ramp", "position_ramp") != 3 {
		t.Errorf("legacy file: %d commands, %v", legacy.Commands, legacy.Matrix.W)
	}
	// An old 8-node pendulum matrix is laid over the 9 nodes.
	old := graphs[Key{"david-test-pendulum", "pendulum", "engdes1"}].Matrix
	if old == nil || len(old.Nodes) != 9 || old.Weight("start", "brake") != 2 || old.Total() != 6 {
		t.Errorf("imported 8-node matrix: %+v", old)
	}
	if b.Stats.ImportedMatrices != 1 || b.Stats.NonLogType == 0 {
		t.Errorf("stats %+v", b.Stats)
	}
}

func TestReferenceMockMatrixPlusLog(t *testing.T) {
	b := NewBuilder()
	if _, err := b.ReadLogsDir(fixtureDir(t, "test/mock"), Window{}); err != nil {
		t.Fatal(err)
	}
	gs := b.Matrices()
	if len(gs) != 1 {
		t.Fatalf("%d graphs, want 1", len(gs))
	}
	want := readMatrix(t, filepath.Join(fixtureDir(t, "test/mock"), "0417fa50-de61-4a45-b71f-410fc7da9388-pendulum-engdes1-adjacency.csv"))
	want, _ = want.Over(Experiments["pendulum"].Nodes)
	// One kept message (start) makes no edge: the matrix is the file's.
	if !reflect.DeepEqual(gs[0].Matrix, want) {
		t.Errorf("got %v, want %v", gs[0].Matrix.W, want.W)
	}
	var buf strings.Builder
	if err := gs[0].Matrix.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), ",start,brake,load,free,sampling,drive_perc,brake_perc,measuring_tools,record\nstart,0.0,0.0,0.0,2.0,0.0,1.0,0.0,0.0,0.0\n") {
		t.Errorf("csv:\n%s", buf.String())
	}
}
