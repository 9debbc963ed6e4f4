package duckdbtest

import (
	"encoding/json"
	"testing"
)

func TestQueryConvertsValues(t *testing.T) {
	rows := Query(t, `SELECT 42 AS n, 9007199254740993::BIGINT AS big,
		TIMESTAMPTZ '2026-11-26 14:00:00.123456+00' AS ts, 'hi' AS s, NULL AS z,
		'\x00\xFF'::BLOB AS b
		FROM range(2)`)
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	r := rows[0]
	if r["n"] != json.Number("42") || r["big"] != "9007199254740993" || r["s"] != "hi" || r["z"] != nil {
		t.Errorf("scalars wrong: %#v", r)
	}
	if r["ts"] != "2026-11-26T14:00:00.123456Z" {
		t.Errorf("timestamp = %v, want UTC ISO with micros", r["ts"])
	}
	if r["b"] != "AP8=" {
		t.Errorf("blob = %v, want base64 AP8=", r["b"])
	}
}
