package statement

import (
	"encoding/json"
	"strings"
	"testing"
)

// The statement of the facts file, as a spinner UI sends it.
const full = `{"timestamp": 1733000000000, "level": "INFO", "type": "analytics", "version": "1.1",
 "actor":   {"id": "u-4f2c", "course": "ed1"},
 "verb":    {"name": "clicked", "definition": "https://lh.example/verbs/clicked"},
 "object":  {"id": "run-voltage-step", "parent": "controls", "ui": "spinner-3.0"},
 "context": {"event_type": "click", "event_timestamp": 1234.5, "x": 10, "y": 20,
             "exp_id": "spin30", "session-expired": false, "graph_node": "voltage_step"}}`

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestParseFull(t *testing.T) {
	f := Parse([]byte(full))
	got := map[string]any{"user": deref(f.User), "course": deref(f.Course), "device": deref(f.Device), "verb": deref(f.Verb),
		"object": deref(f.ObjectID), "node": deref(f.GraphNode), "ts": deref(f.Timestamp), "version": deref(f.Version),
		"type": deref(f.Type), "level": deref(f.Level), "err": f.Err}
	want := map[string]any{"user": "u-4f2c", "course": "ed1", "device": "spin30", "verb": "clicked",
		"object": "run-voltage-step", "node": "voltage_step", "ts": int64(1733000000000), "version": "1.1",
		"type": "analytics", "level": "INFO", "err": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestParseTolerates(t *testing.T) {
	for _, c := range []struct {
		name, body, err string
		check           func(Fields) bool
	}{
		{"not JSON", `{"verb": `, "not JSON", func(f Fields) bool { return f.Verb == nil }},
		{"empty", ``, "empty body", func(f Fields) bool { return f.User == nil }},
		{"an array", `[1,2]`, "not a JSON object", func(f Fields) bool { return f.User == nil }},
		{"null", `null`, "not a JSON object", func(f Fields) bool { return f.User == nil }},
		{"a string", `"clicked"`, "not a JSON object", func(f Fields) bool { return f.User == nil }},
		{"nulls", `{"actor": null, "verb": {"name": null}, "timestamp": null}`, "",
			func(f Fields) bool { return f.User == nil && f.Verb == nil && f.Timestamp == nil }},
		{"before version 1.1", `{"timestamp": 1, "actor": {"id": "u"}, "verb": {"name": "session-started"}}`, "",
			func(f Fields) bool { return f.Version == nil && *f.User == "u" && *f.Timestamp == 1 }},
		{"wrong types", `{"actor": "u", "verb": {"name": 3}, "timestamp": "soon", "object": {"id": "k"}}`,
			"actor: not an object; verb.name: not a string; timestamp: not a number of milliseconds",
			func(f Fields) bool { return f.User == nil && f.Verb == nil && *f.ObjectID == "k" }},
		{"non-ASCII and extra fields", `{"object": {"id": "slider", "value": "ΔV = 3 ✓"}, "extra": [1, {"x": null}]}`, "",
			func(f Fields) bool { return *f.ObjectID == "slider" }},
		{"fractional timestamp", `{"timestamp": 1733000000000.7}`, "",
			func(f Fields) bool { return *f.Timestamp == 1733000000000 }},
		{"huge timestamp", `{"timestamp": 1e300}`, "timestamp: not a number of milliseconds",
			func(f Fields) bool { return f.Timestamp == nil }},
	} {
		f := Parse([]byte(c.body))
		if !strings.HasPrefix(f.Err, c.err) || (c.err == "") != (f.Err == "") {
			t.Errorf("%s: Err %q, want %q", c.name, f.Err, c.err)
		}
		if !c.check(f) {
			t.Errorf("%s: fields %+v", c.name, f)
		}
	}
}

// Whatever the body, Parse returns (never panics), and a body that is a
// JSON object is never called "not JSON".
func FuzzParse(f *testing.F) {
	for _, s := range []string{full, `{}`, `[]`, `{"actor":{"id":1}}`, "\xff", `{"timestamp":-0.5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs := Parse(body)
		var obj map[string]any
		if json.Unmarshal(body, &obj) == nil && strings.HasPrefix(fs.Err, "not JSON") {
			t.Fatalf("a JSON object called %q", fs.Err)
		}
		if json.Valid(body) != !strings.HasPrefix(fs.Err, "not JSON") && len(strings.TrimSpace(string(body))) > 0 {
			t.Fatalf("valid %v but Err %q", json.Valid(body), fs.Err)
		}
	})
}
