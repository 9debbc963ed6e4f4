package recorder_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/publish/compactor"
	"github.com/practable/lablog/internal/record/buffer"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/recorder"
	"github.com/practable/lablog/internal/sim/labsim"
	"github.com/practable/lablog/internal/testing/duckdbtest"
	"github.com/practable/lablog/internal/testing/testkit"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t testing.TB, hostURL string, names []string) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Buffer.Path = filepath.Join(dir, "buffer.db")
	cfg.Archive.Path = filepath.Join(dir, "archive")
	cfg.Archive.Require = config.RequireNone
	cfg.Archive.RowGroupRows = 500
	for _, n := range names {
		cfg.StreamSpecs = append(cfg.StreamSpecs, config.StreamSpec{Name: n, RelayHost: hostURL})
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.Archive.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// flush archives everything left in the buffer, as `lablog compact
// --open-hours` does.
func flush(t *testing.T, cfg config.Config) {
	t.Helper()
	db := testkit.OpenBuffer(t, cfg.Buffer.Path, buffer.Options{})
	defer db.Close() // before the test's next step opens the buffer again
	opts := wire.Compactor(cfg, quietLogger(), nil)
	opts.OpenHours = true
	if res := compactor.New(db, opts).RunOnce(context.Background()); res.Err != nil {
		t.Fatal(res.Err)
	}
	if p, _ := db.Pending(); len(p) != 0 {
		t.Fatalf("buffer not empty after flush: %+v", p)
	}
}

// readArchive verifies the tree and returns its rows per stream, in (seq,
// part) order.
func readArchive(t *testing.T, root string) map[string][]archive.Row {
	t.Helper()
	if _, problems := archive.VerifyTree(root); len(problems) > 0 {
		for _, p := range problems {
			t.Errorf("verify %s: %v", p.Path, p.Err)
		}
		t.FailNow()
	}
	rows := map[string][]archive.Row{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || filepath.Ext(path) != ".parquet" {
			return err
		}
		rs, meta, err := archive.ReadRows(path)
		if err != nil {
			return err
		}
		rows[meta.Stream] = append(rows[meta.Stream], rs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rows {
		sort.Slice(rs, func(i, j int) bool {
			return rs[i].Seq < rs[j].Seq || rs[i].Seq == rs[j].Seq && rs[i].Part < rs[j].Part
		})
	}
	return rows
}

// frames rebuilds each lab frame (text and binary) from rows, in order.
func frames(rows []archive.Row) [][]byte {
	var out [][]byte
	last := int64(-1)
	for _, r := range rows {
		if r.Kind != archive.KindMessage && r.Kind != "binary" {
			continue
		}
		b := r.RawBytes
		if r.Raw != nil {
			b = []byte(*r.Raw)
		}
		if r.Seq != last {
			out = append(out, nil)
			last = r.Seq
		}
		out[len(out)-1] = append(out[len(out)-1], b...)
	}
	return out
}

func TestTwelveStreamsEndToEnd(t *testing.T) {
	host, err := labsim.NewHost("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	var names []string
	for i := 30; i <= 41; i++ {
		names = append(names, fmt.Sprintf("spin%d", i))
	}
	cfg := testConfig(t, host.URL(), names)
	rec, err := recorder.Open(wire.Recorder(cfg, quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(runCtx) }()
	for _, n := range names {
		if err := host.WaitClients(ctx, n, 1); err != nil {
			t.Fatal(err)
		}
	}

	const perStream = 300
	lab := labsim.NewLab(host, labsim.LabOptions{Streams: names, Rate: 2000, JoinProb: 0.3, BadFrames: true, Seed: 7})
	if err := lab.RunN(ctx, perStream); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "lablog to receive every delivered frame", func() bool {
		var delivered, received int64
		for _, n := range names {
			delivered += host.DeliveredCount(n)
		}
		for _, s := range rec.Sources() {
			received += s.Frames
		}
		return received == delivered
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	flush(t, cfg)

	archived := readArchive(t, cfg.Archive.Path)
	type expect struct {
		messages int
		users    map[string]bool
		ts       []int64
	}
	want := map[string]*expect{}
	for _, n := range names {
		delivered := host.Delivered(n)
		got := frames(archived[n])
		if len(got) != len(delivered) {
			t.Fatalf("%s: %d frames archived, %d delivered", n, len(got), len(delivered))
		}
		for i := range delivered {
			if !bytes.Equal(got[i], delivered[i]) {
				t.Fatalf("%s frame %d differs:\n got %.120q\nwant %.120q", n, i, got[i], delivered[i])
			}
		}
		if lab.Sent(n) != perStream {
			t.Fatalf("%s: lab sent %d", n, lab.Sent(n))
		}
		e := &expect{users: map[string]bool{}}
		for _, f := range delivered {
			for _, m := range frame.Split(f) {
				e.messages++
				if m.User != nil {
					e.users[*m.User] = true
				}
				if m.T != nil {
					e.ts = append(e.ts, *m.T)
				}
			}
		}
		want[n] = e
		rows := archived[n]
		if rows[0].Kind != "connected" || rows[len(rows)-1].Kind != "disconnected" || *rows[len(rows)-1].Detail != "shutdown" {
			t.Errorf("%s: first/last rows %q/%q, want connected ... disconnected(shutdown)", n, rows[0].Kind, rows[len(rows)-1].Kind)
		}
	}

	total := 0
	for _, e := range want {
		total += e.messages
	}
	t.Logf("%d streams, %d messages archived and checked", len(names), total)

	// An independent reader sees the same counts, users and timestamps.
	glob := cfg.Archive.Path + "/**/*.parquet"
	got := duckdbtest.Query(t, fmt.Sprintf(`SELECT stream, count(*) AS messages, count(DISTINCT "user") AS users,
		list(epoch_ms(t) ORDER BY seq, part) FILTER (WHERE t IS NOT NULL) AS ts
		FROM read_parquet('%s', hive_partitioning = true)
		WHERE kind IN ('message', 'binary') GROUP BY stream ORDER BY stream`, glob))
	if len(got) != len(names) {
		t.Fatalf("duckdb sees %d streams, want %d", len(got), len(names))
	}
	for _, row := range got {
		n := row["stream"].(string)
		e := want[n]
		if num(t, row["messages"]) != int64(e.messages) || num(t, row["users"]) != int64(len(e.users)) {
			t.Errorf("%s: duckdb messages=%v users=%v, want %d and %d", n, row["messages"], row["users"], e.messages, len(e.users))
		}
		var ts []int64
		for _, v := range row["ts"].([]any) {
			ts = append(ts, num(t, v))
		}
		if !slices.Equal(ts, e.ts) {
			t.Errorf("%s: duckdb t values differ from what was sent (%d vs %d values)", n, len(ts), len(e.ts))
		}
	}
	rx := duckdbtest.Query(t, fmt.Sprintf(`SELECT stream, seq, part, epoch_us(received_at) AS us
		FROM read_parquet('%s', hive_partitioning = true) ORDER BY stream, seq, part`, glob))
	i := 0
	for _, n := range names {
		for _, r := range archived[n] {
			d := rx[i]
			if d["stream"] != n || num(t, d["seq"]) != r.Seq || num(t, d["part"]) != int64(r.Part) || num(t, d["us"]) != r.ReceivedAt {
				t.Fatalf("row %d: duckdb %v, parquet-go %s/%d/%d/%d", i, d, n, r.Seq, r.Part, r.ReceivedAt)
			}
			i++
		}
	}
	if i != len(rx) {
		t.Fatalf("duckdb read %d rows, parquet-go %d", len(rx), i)
	}
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}
