package analytics

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// labFrames makes a deterministic session of several users on spinners and
// pendulums over three hours: commands, requests, NaN responses, feedback,
// commands of the other experiment, glued frames, equal t across hardware,
// legacy messages. Frames arrive in slice order.
func labFrames(seed uint64, n int) []frame.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	spin := []string{"voltage", "voltage_ramp", "position", "position_ramp", "speed", "speed_ramp"}
	pend := []string{"start", "brake", "load", "free", "sampling", "drive_perc", "brake_perc", "measuring_tools", "record"}
	users := []string{"53a6788c-e689-48d4-9231-c2fbd23df009", "alice", "bob", "carol"}
	var recs []frame.Record
	received := t0
	for i := range n {
		received = received.Add(time.Duration(1+rng.IntN(4000)) * time.Millisecond)
		user := users[rng.IntN(len(users))]
		exp, hw, cmds := "spinner", fmt.Sprintf("spin3%d", rng.IntN(2)), spin
		if user == "carol" {
			exp, hw, cmds = "pendulum", "pend00", pend
		}
		// t runs a little behind received, with jitter and ties.
		t := received.UnixMilli() - int64(rng.IntN(3))*500
		msg := func(log string) string {
			return fmt.Sprintf(`{"user":%q,"t":%d,"exp":%q,"hardware":%q,"course":"engdes1","type":"log","payload":{"log":%q,"data":{"set":%d}}}`,
				user, t, exp, hw, log, i)
		}
		var data string
		switch r := rng.IntN(20); {
		case r == 0:
			data = fmt.Sprintf(`{"user":%q,"t":%d,"exp":%q,"course":"engdes1","type":"response","payload":{"exploration":NaN}}`, user, t, exp)
		case r == 1:
			data = fmt.Sprintf(`{"user":%q,"t":%d,"exp":%q,"course":"engdes1","type":"feedback","payload":{"state":"Curious","subject":"UI"}}`, user, t, exp)
		case r == 2:
			data = msg(cmds[rng.IntN(len(cmds))]) + msg(cmds[rng.IntN(len(cmds))]) // glued
		case r == 3:
			data = msg(pend[rng.IntN(len(pend))]) // maybe another experiment's
		case r == 4:
			data = fmt.Sprintf(`{"user":%q,"t":%d,"payload":{"log":"voltage"}}`, user, t) // legacy
		default:
			data = msg(cmds[rng.IntN(len(cmds))])
		}
		recs = append(recs, frame.Record{Stream: hw, Received: received, ClockSynced: true, Kind: frame.Text, Data: []byte(data)})
	}
	return recs
}

func csvOf(t *testing.T, gs []Graph) map[Key]string {
	t.Helper()
	out := map[Key]string{}
	for _, g := range gs {
		var buf bytes.Buffer
		if err := g.Matrix.WriteCSV(&buf); err != nil {
			t.Fatal(err)
		}
		out[g.Key] = buf.String()
	}
	return out
}

// The same frames give the same matrices from a JSON-lines file and from
// the archive the real compactor wrote plus the buffer's open hour, also
// when an hour was published but not yet deleted from the buffer.
func TestArchiveAndBufferGiveTheJSONLMatrices(t *testing.T) {
	recs := labFrames(7, 6000)
	dir := t.TempDir()

	var jsonl bytes.Buffer
	for _, r := range recs {
		jsonl.Write(r.Data)
		jsonl.WriteByte('\n')
	}
	fromJSONL := NewBuilder()
	if err := fromJSONL.ReadJSONL(&jsonl, Window{}); err != nil {
		t.Fatal(err)
	}
	want := csvOf(t, fromJSONL.Matrices())

	bufPath, root := filepath.Join(dir, "buffer.db"), filepath.Join(dir, "archive")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := buffer.Open(bufPath, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += 500 {
		if err := db.Append(recs[i:min(i+500, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	last := recs[len(recs)-1].Received
	c := compactor.New(db, compactor.Options{Root: root, Require: "none", Grace: time.Minute, RowGroupRows: 1000,
		Now: func() time.Time { return last.Add(time.Second) }})
	if res := c.RunOnce(context.Background()); res.Err != nil || res.Files == 0 {
		t.Fatalf("compaction: %+v", res)
	}
	// A crash between publish and delete: the open hour of one stream is in
	// the archive and still in the buffer.
	open := frame.Hour(last)
	w, err := archive.Create(root, "spin30", open, archive.Options{BufferID: db.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Scan(buffer.Group{BufferID: db.ID(), Stream: "spin30", Hour: open}, 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		return w.Add(archive.Entry{Seq: seq, Rec: r})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(); err != nil {
		t.Fatal(err)
	}

	// While lablog holds the buffer it is refused.
	if err := NewBuilder().ReadBuffer(bufPath, Window{}, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("reading a held buffer: %v, want locked", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	archiveOnly := NewBuilder()
	if _, err := archiveOnly.ReadArchive(root, Window{}, nil); err != nil {
		t.Fatal(err)
	}
	if archiveOnly.Stats.Commands >= fromJSONL.Stats.Commands {
		t.Fatalf("the archive alone holds %d commands of %d: the open hour should be in the buffer only", archiveOnly.Stats.Commands, fromJSONL.Stats.Commands)
	}

	both := NewBuilder()
	var calls int
	held, err := both.ReadArchive(root, Window{}, func(done, total int) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	files, _ := ArchiveFiles(root)
	if calls != len(files) || len(files) < 4 {
		t.Errorf("progress called %d times for %d files", calls, len(files))
	}
	if err := both.ReadBuffer(bufPath, Window{}, held); err != nil {
		t.Fatal(err)
	}
	got := csvOf(t, both.Matrices())
	if len(got) != len(want) || len(want) < 4 {
		t.Errorf("%d graphs from the archive, %d from the JSON lines", len(got), len(want))
	}
	for k, csv := range want {
		if got[k] != csv {
			t.Errorf("%v differs:\narchive:\n%s\njsonl:\n%s", k, got[k], csv)
		}
	}
	ws, gs := fromJSONL.Stats, both.Stats
	if gs.Commands != ws.Commands || gs.GluedFrames != ws.GluedFrames || gs.ForeignCommands != ws.ForeignCommands ||
		gs.NoKey != ws.NoKey || gs.Feedback != ws.Feedback || gs.Messages != ws.Messages {
		t.Errorf("stats differ:\narchive %+v\njsonl   %+v", gs, ws)
	}
	if ws.GluedFrames == 0 || ws.ForeignCommands == 0 || ws.NoKey == 0 || ws.Feedback == 0 {
		t.Errorf("the session lacks a case: %+v", ws)
	}

	// A window on received time: only what arrived in it.
	from := t0.Add(time.Hour)
	windowed := NewBuilder()
	if _, err := windowed.ReadArchive(root, Window{Since: from, Until: from.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	var inWindow int64
	for _, r := range recs {
		if !r.Received.Before(from) && r.Received.Before(from.Add(time.Hour)) {
			inWindow++
		}
	}
	if windowed.Stats.Frames != inWindow {
		t.Errorf("window: %d frames, want %d", windowed.Stats.Frames, inWindow)
	}
}
