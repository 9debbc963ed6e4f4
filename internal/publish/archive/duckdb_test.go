package archive_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/duckdbtest"
)

// TestDuckDBReadsArchive reads a small archive tree with DuckDB, which shares
// no code with parquet-go, the way researchers will: hive partitioning over
// the whole tree. Every value must be what was written.
func TestDuckDBReadsArchive(t *testing.T) {
	root := t.TempDir()
	late := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC) // its next hour is the next day
	in := map[string][]archive.Entry{}                     // stream -> entries
	add := func(stream string, hour time.Time, entries ...archive.Entry) {
		for i := range entries {
			entries[i].Rec.Stream = stream
			entries[i].Rec.Received = hour.Add(time.Duration(entries[i].Seq)*time.Second + 654321*time.Microsecond)
		}
		write(t, root, stream, hour, archive.Options{}, entries...)
		in[stream] = append(in[stream], entries...)
	}
	add("spin30", late,
		entry(1, frame.Connected, "ws://localhost:8888/ws/spin30"),
		entry(2, frame.Text, full+nanMsg),
		entry(3, frame.Text, legacy))
	add("spin30", late.Add(time.Hour),
		entry(4, frame.Text, "not json"),
		entry(5, frame.Text, "{\"user\":\"\xff\"}"),
		entry(6, frame.Binary, "\x00\xff"))
	add("pend00", hour14,
		entry(1, frame.Text, legacy+legacy),
		entry(2, frame.Overflow, "3"))
	add("pend00", hour14.Add(time.Hour),
		entry(7, frame.Text, `{"user":"Zoë","t":-1,"payload":null}`))

	from := fmt.Sprintf("read_parquet('%s', hive_partitioning=true)",
		strings.ReplaceAll(filepath.Join(root, "**", "*.parquet"), "'", "''"))

	counts := duckdbtest.Query(t, "SELECT stream, count(*) AS n, count(DISTINCT seq) AS frames, count(DISTINCT date) AS days FROM "+from+" GROUP BY stream ORDER BY stream")
	want := []string{"pend00 4 3 1", "spin30 7 6 2"}
	for i, r := range counts {
		if got := fmt.Sprint(r["stream"], " ", r["n"], " ", r["frames"], " ", r["days"]); i >= len(want) || got != want[i] {
			t.Errorf("count row %d = %q, want %q", i, got, want)
		}
	}

	got := duckdbtest.Query(t, `SELECT stream, CAST(date AS VARCHAR) AS date, seq, part, kind, clock_synced,
		"user", exp, hardware, course, "type", t, received_at, payload, raw, raw_bytes, error, detail
		FROM `+from+` ORDER BY stream, seq, part`)
	var wantRows []map[string]any
	for _, stream := range []string{"pend00", "spin30"} {
		dir := filepath.Join(root, "stream="+stream)
		paths, _ := filepath.Glob(filepath.Join(dir, "*", "*.parquet"))
		for _, p := range paths {
			rows, _, err := archive.ReadRows(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				wantRows = append(wantRows, duckForm(stream, r))
			}
		}
	}
	if len(got) != len(wantRows) {
		t.Fatalf("DuckDB read %d rows, want %d", len(got), len(wantRows))
	}
	for i := range got {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(wantRows[i])
		if !bytes.Equal(g, w) {
			t.Errorf("row %d:\n duckdb %s\n   want %s", i, g, w)
		}
	}

	// The frames DuckDB gives back are the frames received, byte for byte.
	rebuilt := map[string][]byte{}
	for _, r := range got {
		key := fmt.Sprint(r["stream"], "/", r["seq"])
		switch {
		case r["raw_bytes"] != nil:
			b, _ := base64.StdEncoding.DecodeString(r["raw_bytes"].(string))
			rebuilt[key] = append(rebuilt[key], b...)
		case r["raw"] != nil:
			rebuilt[key] = append(rebuilt[key], r["raw"].(string)...)
		default:
			rebuilt[key] = append(rebuilt[key], r["detail"].(string)...)
		}
	}
	for stream, entries := range in {
		for _, e := range entries {
			key := fmt.Sprint(stream, "/", e.Seq)
			if !bytes.Equal(rebuilt[key], e.Rec.Data) {
				t.Errorf("%s: DuckDB frame %q, want %q", key, rebuilt[key], e.Rec.Data)
			}
		}
	}
	if got[0]["user"] != "u2" || got[0]["t"] != "2023-01-10T11:59:48.408000Z" || got[0]["received_at"] != "2026-11-26T14:00:01.654321Z" {
		t.Errorf("first row read as %v", got[0])
	}
}

// duckForm is a row as query.mjs prints it: timestamps as UTC ISO strings
// with microseconds, blobs as base64, nulls as nil.
func duckForm(stream string, r archive.Row) map[string]any {
	str := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	iso := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
	m := map[string]any{
		"stream": stream, "date": r.ReceivedTime().Format("2006-01-02"),
		"seq": json.Number(fmt.Sprint(r.Seq)), "part": json.Number(fmt.Sprint(r.Part)),
		"kind": r.Kind, "clock_synced": r.ClockSynced,
		"user": str(r.User), "exp": str(r.Exp), "hardware": str(r.Hardware), "course": str(r.Course), "type": str(r.Type),
		"t": nil, "received_at": iso(r.ReceivedTime()),
		"payload": str(r.Payload), "raw": str(r.Raw), "raw_bytes": nil, "error": str(r.Error), "detail": str(r.Detail),
	}
	if tt, ok := r.TTime(); ok {
		m["t"] = iso(tt)
	}
	if r.RawBytes != nil {
		m["raw_bytes"] = base64.StdEncoding.EncodeToString(r.RawBytes)
	}
	return m
}
