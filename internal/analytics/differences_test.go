package analytics

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func buildJSONL(t *testing.T, lines ...string) (*Builder, map[Key]Graph) {
	t.Helper()
	b := NewBuilder()
	if err := b.ReadJSONL(strings.NewReader(strings.Join(lines, "\n")+"\n"), Window{}); err != nil {
		t.Fatal(err)
	}
	out := map[Key]Graph{}
	for _, g := range b.Matrices() {
		out[g.Key] = g
	}
	return b, out
}

func msg(user, hw string, t int64, log string) string {
	return `{"user":"` + user + `","t":` + itoa(t) + `,"exp":"spinner","hardware":"` + hw + `","course":"c","type":"log","payload":{"log":"` + log + `","data":{"set":NaN}}}`
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var keyU = Key{"u", "spinner", "c"}

func TestForeignCommandIsSkippedAndCounted(t *testing.T) {
	b, gs := buildJSONL(t, msg("u", "spin30", 1, "voltage"), msg("u", "spin30", 2, "start"), msg("u", "spin30", 3, "position"))
	m := gs[keyU].Matrix
	if m.Weight("voltage_step", "position_step") != 1 || m.Total() != 1 {
		t.Errorf("matrix %v: want the one edge voltage_step->position_step", m.W)
	}
	if b.Stats.ForeignCommands != 1 || b.Stats.GraphsLostByRef != 1 || b.Stats.Commands != 2 {
		t.Errorf("stats %+v", b.Stats)
	}
}

func TestGluedFrameKeepsBothMessages(t *testing.T) {
	b, gs := buildJSONL(t, msg("u", "spin30", 1, "voltage")+msg("u", "spin30", 2, "voltage"))
	if w := gs[keyU].Matrix.Weight("voltage_step", "voltage_step"); w != 1 {
		t.Errorf("self-loop %v, want 1", w)
	}
	if b.Stats.GluedFrames != 1 || b.Stats.GluedMessages != 2 {
		t.Errorf("stats %+v", b.Stats)
	}
}

func TestOrderByTimeAcrossAndWithinHardware(t *testing.T) {
	// One hardware, arriving out of t order: sorted (the reference kept
	// file order) and counted.
	b, gs := buildJSONL(t, msg("u", "spin30", 5, "speed"), msg("u", "spin30", 1, "voltage"), msg("u", "spin30", 3, "position"))
	m := gs[keyU].Matrix
	if m.Weight("voltage_step", "position_step") != 1 || m.Weight("position_step", "speed_step") != 1 || m.Total() != 2 {
		t.Errorf("matrix %v", m.W)
	}
	if b.Stats.UnsortedSingleHW != 1 {
		t.Errorf("unsorted single hardware %d, want 1", b.Stats.UnsortedSingleHW)
	}
	// Two hardware, equal t: arrival order decides; not counted as unsorted.
	b, gs = buildJSONL(t, msg("u", "spin30", 7, "speed"), msg("u", "spin31", 2, "voltage"), msg("u", "spin30", 2, "position"))
	m = gs[keyU].Matrix
	if m.Weight("voltage_step", "position_step") != 1 || m.Weight("position_step", "speed_step") != 1 {
		t.Errorf("matrix %v", m.W)
	}
	if b.Stats.UnsortedSingleHW != 0 {
		t.Errorf("unsorted single hardware %d, want 0", b.Stats.UnsortedSingleHW)
	}
}

func TestWhatIsNotCounted(t *testing.T) {
	b, gs := buildJSONL(t,
		`{"user":"u","t":1,"payload":{"log":"voltage"}}`, // legacy: no exp or course
		`{"user":"u","t":1,"exp":"spinner","course":"c","type":"request","payload":{"content":"indicators"}}`,
		`{"user":"u","t":1,"exp":"spinner","course":"c","type":"response","payload":NaN}`,
		`{"user":"u","exp":"spinner","course":"c","type":"log","payload":{"log":"voltage"}}`, // no t
		`{"user":"u","t":1,"exp":"drone","course":"c","type":"log","payload":{"log":"voltage"}}`,
		`not json`,
		msg("u", "spin30", 1, "voltage"))
	want := Stats{Frames: 7, Messages: 7, Unparsed: 1, Commands: 1, NotCommands: 2, NoKey: 1, NoTime: 1, UnknownExp: 1}
	if b.Stats != want {
		t.Errorf("stats %+v\nwant  %+v", b.Stats, want)
	}
	if len(gs) != 1 || gs[keyU].Matrix.Total() != 0 {
		t.Errorf("graphs %v", gs)
	}
}

func TestFeedbackGivesEnjoyment(t *testing.T) {
	fb := func(state, subject string) string {
		return `{"user":"u","t":1,"exp":"spinner","course":"cie3","type":"feedback","payload":{"state":"` + state + `","subject":"` + subject + `"}}`
	}
	b, gs := buildJSONL(t, fb("Engaged", "UI"), fb("Curious", "spinner-cie3-3"), fb("Bored", "LA"), fb("Engaged", "Nope"), fb("Sleepy", "UI"))
	g := gs[Key{"u", "spinner", "cie3"}]
	if e := Enjoyment(g.Feedback); e != 1 {
		t.Errorf("enjoyment %d, want 2-1", e)
	}
	if b.Stats.Feedback != 3 || b.Stats.FeedbackIgnored != 2 {
		t.Errorf("stats %+v", b.Stats)
	}
}

func TestCentroid(t *testing.T) {
	e := Experiments["spinner"]
	m := NewMatrix(e.Nodes)
	m.W[0][2] = 3 // three steps into position_step at (1, 0)
	m.W[2][0] = 1 // one into voltage_step at (0.5, sin 60)
	c := Centroid(m, e.Layout, e.LayoutOrder)
	if math.Abs(c[0]-(3*1+0.5)/4) > 1e-12 || math.Abs(c[1]-sin60/4) > 1e-12 {
		t.Errorf("centroid %v", c)
	}
	if c := Centroid(NewMatrix(e.Nodes), e.Layout, e.LayoutOrder); !math.IsNaN(c[0]) || !math.IsNaN(c[1]) {
		t.Errorf("empty graph centroid %v, want NaN", c)
	}
}

func TestWindowOnT(t *testing.T) {
	b := NewBuilder()
	lines := msg("u", "h", 1000, "voltage") + "\n" + msg("u", "h", 2000, "position") + "\n" + msg("u", "h", 3000, "speed") + "\n"
	if err := b.ReadJSONL(strings.NewReader(lines), Window{Since: time.UnixMilli(2000), Until: time.UnixMilli(3000)}); err != nil {
		t.Fatal(err)
	}
	if b.Stats.Commands != 1 {
		t.Errorf("commands %d, want the one at t=2000", b.Stats.Commands)
	}
}

func TestNumberMarshalsNaNAsNull(t *testing.T) {
	for _, tc := range []struct {
		n    Number
		want string
	}{{Number(math.NaN()), "null"}, {Number(math.Inf(1)), "null"}, {2.5, "2.5"}, {20, "20"}} {
		got, err := tc.n.MarshalJSON()
		if err != nil || string(got) != tc.want {
			t.Errorf("%v -> %s %v, want %s", float64(tc.n), got, err, tc.want)
		}
	}
}

func TestFileNameIsSafe(t *testing.T) {
	for user, want := range map[string]string{
		"53a6788c-e689-48d4-9231-c2fbd23df009": "53a6788c-e689-48d4-9231-c2fbd23df009-spinner-c-adjacency.csv",
		"../etc/x":                             "%2E.%2Fetc%2Fx-spinner-c-adjacency.csv",
		"a b":                                  "a%20b-spinner-c-adjacency.csv",
	} {
		if got := FileName(Key{user, "spinner", "c"}, "-adjacency.csv"); got != want {
			t.Errorf("FileName(%q) = %q, want %q", user, got, want)
		}
	}
}
