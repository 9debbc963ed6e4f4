package analytics

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

// statementRecord is an /addLog call as the addlog handler records it.
func statementRecord(received time.Time, user, course, hardware, body string) frame.Record {
	q := url.Values{"username": {user}, "course": {course}, "hardware": {hardware}}
	return frame.Record{Stream: "addlog-" + hardware, Received: received, ClockSynced: true, Kind: frame.Statement,
		Data: frame.StatementData(q, []byte(body))}
}

// clicked is a UI's statement for a click on a command control.
func clicked(t int64, user, course, node string) string {
	return fmt.Sprintf(`{"timestamp":%d,"actor":{"id":%q,"course":%q},"verb":{"name":"clicked"},"object":{"id":"run-%s"},"context":{"exp_id":"spin30","graph_node":%q}}`,
		t, user, course, node, node)
}

// withStatements interleaves recs with statements of other users: clicks
// on command controls (with ties and out-of-order timestamps), sessions,
// hovers, a statement with an unknown node, and one without hardware.
func withStatements(seed uint64, recs []frame.Record) []frame.Record {
	rng := rand.New(rand.NewPCG(seed, 2))
	spin, pend := Experiments["spinner"].Nodes, Experiments["pendulum"].Nodes
	var out []frame.Record
	for i, r := range recs {
		out = append(out, r)
		if i%3 != 0 {
			continue
		}
		user, hw, nodes := fmt.Sprintf("s-%d", rng.IntN(5)), "spinner", spin
		if user == "s-4" {
			hw, nodes = "pendulum", pend
		}
		ts := r.Received.UnixMilli() - int64(rng.IntN(3))*700
		var body string
		switch k := rng.IntN(12); {
		case k == 0:
			body = fmt.Sprintf(`{"timestamp":%d,"actor":{"id":%q},"verb":{"name":"session-started"},"object":{"id":"ui"}}`, ts, user)
		case k == 1:
			body = fmt.Sprintf(`{"timestamp":%d,"actor":{"id":%q},"verb":{"name":"data-hovered"},"object":{"id":"graph"}}`, ts, user)
		case k == 2:
			body = clicked(ts, user, "ed1", "no_such_node")
		case k == 3:
			out = append(out, statementRecord(r.Received, user, "ed1", "none", clicked(ts, user, "ed1", nodes[rng.IntN(len(nodes))])))
			continue
		default:
			body = clicked(ts, user, "ed1", nodes[rng.IntN(len(nodes))])
		}
		out = append(out, statementRecord(r.Received, user, "ed1", hw, body))
	}
	return out
}

// The live store counts statements as the offline reading of the same
// records does, through catch-ups, compactions and restarts: the test of
// websocket frames, with statements mixed in.
func TestStoreMatchesArchiveWithStatements(t *testing.T) {
	recs := withStatements(5, labFrames(4, 6000))
	live, liveStats, fromArchive := storeAndArchive(t, recs, nil)
	if liveStats.Statements == 0 || liveStats.Statements != fromArchive.Stats.Statements ||
		liveStats.UnknownNodes == 0 || liveStats.UnknownNodes != fromArchive.Stats.UnknownNodes ||
		liveStats.HardwareFromNode == 0 || liveStats.HardwareFromNode != fromArchive.Stats.HardwareFromNode {
		t.Errorf("statement stats differ or are zero:\nlive    %+v\narchive %+v", liveStats, fromArchive.Stats)
	}
	want, got := csvOf(t, fromArchive.Matrices()), csvOf(t, live)
	n := 0
	for k, csv := range want {
		if k.Course == "ed1" {
			n++
		}
		if got[k] != csv {
			t.Errorf("%v differs:\nlive:\n%s\narchive:\n%s", k, got[k], csv)
		}
	}
	if n != 5 || len(got) != len(want) {
		t.Errorf("%d statement graphs (want 5), %d live graphs, %d from the archive", n, len(got), len(want))
	}
}

// Each fixture's command sequence, sent as clicked statements with the
// commands' graph nodes and timestamps, in the same arrival order (the
// fixtures have runs of equal timestamps, which arrival order breaks),
// gives the graph its websocket log gives.
func TestStatementsGiveTheGraphsOfTheirCommands(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir(t, "comparison_logs"), "*.json"))
	more, _ := filepath.Glob(filepath.Join(fixtureDir(t, "test/data"), "*.json"))
	files = append(files, more...)
	if len(files) < 10 {
		t.Fatalf("%d fixture logs", len(files))
	}
	// One builder a file: the comparison logs share a user name.
	var builders []*Builder
	var recs []frame.Record
	sent := map[Key]bool{}
	received := t0
	for i, path := range files {
		ws := NewBuilder()
		builders = append(builders, ws)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			received = received.Add(time.Millisecond)
			ws.AddFrame(sc.Bytes(), received.UnixMicro())
			var m struct {
				User, Exp, Course *string
				T                 *int64
				Payload           struct{ Log string }
			}
			if json.Unmarshal(sc.Bytes(), &m) != nil || m.User == nil || m.Exp == nil || m.Course == nil || m.T == nil {
				continue
			}
			e := Experiments[*m.Exp]
			node, ok := e.Commands[m.Payload.Log]
			if e == nil || !ok {
				continue
			}
			user := fmt.Sprintf("f%d-%s", i, *m.User)
			sent[Key{User: user, Exp: *m.Exp, Course: *m.Course}] = true
			recs = append(recs, statementRecord(received, user, *m.Course, *m.Exp, clicked(*m.T, user, *m.Course, node)))
		}
		f.Close()
	}
	store, _ := openStore(t)
	if err := store.db.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := store.Fresh(); err != nil {
		t.Fatal(err)
	}
	compared := 0
	for i, ws := range builders {
		for _, g := range ws.Matrices() {
			k := g.Key
			k.User = fmt.Sprintf("f%d-%s", i, k.User)
			s, err := store.Student(k)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(s.Matrix.W, g.Matrix.W, slices.Equal) || s.Commands != g.Commands {
				t.Errorf("%v: statements give %v (%d commands), websocket %v (%d)", k, s.Matrix.W, s.Commands, g.Matrix.W, g.Commands)
			}
			if g.Commands > 0 {
				compared++
			}
		}
	}
	if compared != len(sent) || compared < 10 {
		t.Errorf("%d graphs with commands compared, %d sent as statements", compared, len(sent))
	}
}

// Usage counts and session starts: a student's verbs, websocket commands
// by name, and sessions in timestamp order.
func TestStudentUsageAndSessions(t *testing.T) {
	store, _ := openStore(t)
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	session := func(ts time.Time) string {
		return fmt.Sprintf(`{"timestamp":%d,"actor":{"id":"u"},"verb":{"name":"session-started"}}`, ts.UnixMilli())
	}
	recs := []frame.Record{
		statementRecord(at("2026-12-01T09:00:00Z"), "u", "ed1", "spinner", session(at("2026-12-01T14:05:00Z"))),
		statementRecord(at("2026-12-01T09:00:01Z"), "u", "ed1", "spinner", session(at("2026-12-01T08:30:00Z"))),
		statementRecord(at("2026-12-01T09:00:02Z"), "u", "ed1", "spinner", clicked(1, "u", "ed1", "voltage_step")),
		statementRecord(at("2026-12-01T09:00:03Z"), "u", "ed1", "spinner", clicked(2, "u", "ed1", "speed_ramp")),
		statementRecord(at("2026-12-01T09:00:04Z"), "u", "ed2", "spinner", clicked(3, "u", "ed2", "speed_ramp")),
		{Stream: "spin30", Received: at("2026-12-01T09:00:05Z"), Kind: frame.Text,
			Data: []byte(`{"user":"u","t":3,"exp":"spinner","course":"ed1","type":"log","payload":{"log":"voltage"}}`)},
	}
	if err := store.db.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := store.Fresh(); err != nil {
		t.Fatal(err)
	}
	s, err := store.Student(Key{User: "u", Exp: "spinner", Course: "ed1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"session-started": 2, "clicked": 2, "voltage": 1}; !maps.Equal(s.Usage, want) {
		t.Errorf("usage %v, want %v", s.Usage, want)
	}
	if len(s.Sessions) != 2 || !s.Sessions[0].Equal(at("2026-12-01T08:30:00Z")) || !s.Sessions[1].Equal(at("2026-12-01T14:05:00Z")) {
		t.Errorf("sessions %v", s.Sessions)
	}
	// voltage_step -> speed_ramp -> voltage_step (the websocket command at t=3).
	m := s.Matrix
	if m.Weight("voltage_step", "speed_ramp") != 1 || m.Weight("speed_ramp", "voltage_step") != 1 || m.Total() != 2 || s.Commands != 3 {
		t.Errorf("matrix %v, %d commands", m.W, s.Commands)
	}
	empty, err := store.Student(Key{User: "nobody", Exp: "pendulum", Course: "ed1"})
	if err != nil || empty.Matrix.Total() != 0 || len(empty.Usage) != 0 || len(empty.Matrix.Nodes) != 9 {
		t.Errorf("unknown student: %+v %v", empty, err)
	}
	if _, err := store.Student(Key{User: "u", Exp: "bike", Course: "ed1"}); err == nil {
		t.Error("a student of an unknown experiment: no error")
	}
}

// Fresh includes what was committed before it, and calls that arrive
// during a catch-up share the next one.
func TestFreshSeesEveryCommittedRecord(t *testing.T) {
	store, _ := openStore(t)
	done := make(chan error)
	for round := range 20 {
		if err := store.db.Append([]frame.Record{statementRecord(t0.Add(time.Duration(round)*time.Second), "u", "c", "spinner",
			clicked(int64(round), "u", "c", "voltage_step"))}); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			go func() { done <- store.Fresh() }()
		}
		for range 4 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		s, err := store.Student(Key{User: "u", Exp: "spinner", Course: "c"})
		if err != nil || s.Commands != round+1 {
			t.Fatalf("round %d: %d commands (%v)", round, s.Commands, err)
		}
	}
}

// openStore opens a store on a new buffer in a temporary folder.
func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	db, err := buffer.Open(filepath.Join(dir, "buffer.db"), buffer.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := OpenStore(db, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Seed(t.TempDir()); err != nil { // an empty archive
		t.Fatal(err)
	}
	return store, dir
}

// A Fresh never consumes a whole rebuild: beyond its budget it says the
// store is behind, and a later one, once the rest is consumed, answers.
func TestFreshIsBounded(t *testing.T) {
	store, _ := openStore(t)
	var recs []frame.Record
	for i := range freshBudget + 3*batchMax {
		recs = append(recs, statementRecord(t0.Add(time.Duration(i)*time.Millisecond), "u", "c", "spinner",
			clicked(int64(i), "u", "c", "voltage_step")))
	}
	if err := store.db.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := store.Fresh(); !errors.Is(err, ErrBehind) {
		t.Fatalf("Fresh over %d records: %v, want ErrBehind", len(recs), err)
	}
	s, err := store.Student(Key{User: "u", Exp: "spinner", Course: "c"})
	if err != nil || s.Commands < freshBudget || s.Commands >= len(recs) {
		t.Errorf("after one Fresh: %d commands (%v), want its budget's worth", s.Commands, err)
	}
	if err := store.Fresh(); err != nil {
		t.Fatalf("the second Fresh: %v", err)
	}
	if s, _ := store.Student(Key{User: "u", Exp: "spinner", Course: "c"}); s.Commands != len(recs) {
		t.Errorf("%d commands, want %d", s.Commands, len(recs))
	}
}
