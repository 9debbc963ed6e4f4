package archive_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/testing/duckdbtest"
)

const clicked = `{"timestamp": 1733000000000, "level": "INFO", "type": "analytics", "version": "1.1",
 "actor": {"id": "u-4f2c", "course": "ed1"}, "verb": {"name": "clicked"},
 "object": {"id": "run-voltage-step", "value": "ΔV ✓"}, "context": {"exp_id": "spin30", "graph_node": "voltage_step"}}`

func statementEntry(seq uint64, query url.Values, body string) archive.Entry {
	return entry(seq, frame.Statement, string(frame.StatementData(query, []byte(body))))
}

// Statements are archived one row each: the call's query and the body
// kept exactly (even when they are not JSON or not UTF-8), the indexed
// fields beside them, and verify rebuilds every record from its row.
// DuckDB reads the same values.
func TestStatementsArchived(t *testing.T) {
	root := t.TempDir()
	q := url.Values{"username": {"alice"}, "course": {"ed1"}, "hardware": {"spinner"}}
	entries := []archive.Entry{
		statementEntry(1, q, clicked),
		statementEntry(2, url.Values{"username": {""}, "course": {"none"}, "hardware": {"spinner"}}, clicked), // user from actor.id
		statementEntry(3, q, "not json"),
		statementEntry(4, q, "{\"actor\":{\"id\":\"\xff\"}}"),
		statementEntry(5, url.Values{}, ""),
	}
	path := write(t, root, "addlog-spinner", hour14, archive.Options{BufferID: idA}, entries...)
	if _, err := archive.Verify(path); err != nil {
		t.Fatal(err)
	}
	rows, _, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	got := frames(rows)
	for _, e := range entries {
		if string(got[int64(e.Seq)]) != string(e.Rec.Data) {
			t.Errorf("seq %d: rebuilt %q, want %q", e.Seq, got[int64(e.Seq)], e.Rec.Data)
		}
	}
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	want := []string{
		"1 alice ed1 spinner spin30 clicked run-voltage-step voltage_step INFO 1.1 analytics 1733000000000 <nil>",
		"2 u-4f2c none spinner spin30 clicked run-voltage-step voltage_step INFO 1.1 analytics 1733000000000 <nil>",
		"3 alice ed1 spinner <nil> <nil> <nil> <nil> <nil> <nil> <nil> 0 not JSON: invalid character 'o' in literal null (expecting 'u')",
		"4 alice ed1 spinner <nil> <nil> <nil> <nil> <nil> <nil> <nil> 0 <nil>",
		"5 <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> <nil> 0 empty body",
	}
	for i, r := range rows {
		var ts int64
		if r.T != nil {
			ts = *r.T
		}
		line := fmt.Sprint(r.Seq, " ", s(r.User), " ", s(r.Course), " ", s(r.Hardware), " ", s(r.Exp), " ", s(r.Verb), " ", s(r.ObjectID), " ",
			s(r.GraphNode), " ", s(r.Level), " ", s(r.Version), " ", s(r.Type), " ", ts, " ", s(r.Error))
		if i >= len(want) || line != want[i] {
			t.Errorf("row %d:\n got %s\nwant %s", i, line, want[min(i, len(want)-1)])
		}
		if r.Kind != archive.KindStatement {
			t.Errorf("row %d kind %q", i, r.Kind)
		}
	}
	if rows[3].RawBytes == nil || rows[3].Raw != nil {
		t.Errorf("a body that is not UTF-8 must be kept as raw_bytes")
	}

	from := fmt.Sprintf("read_parquet('%s', hive_partitioning=true)", strings.ReplaceAll(filepath.Join(root, "**", "*.parquet"), "'", "''"))
	db := duckdbtest.Query(t, `SELECT stream, seq, kind, "user", verb, object_id, graph_node, exp, level, version, query, raw
		FROM `+from+` WHERE seq = 1`)
	if len(db) != 1 {
		t.Fatalf("DuckDB: %v", db)
	}
	r := db[0]
	if r["stream"] != "addlog-spinner" || r["kind"] != "statement" || r["user"] != "alice" || r["verb"] != "clicked" ||
		r["object_id"] != "run-voltage-step" || r["graph_node"] != "voltage_step" || r["exp"] != "spin30" ||
		r["query"] != "course=ed1&hardware=spinner&username=alice" || r["raw"] != clicked {
		t.Errorf("DuckDB row: %v", r)
	}
}
