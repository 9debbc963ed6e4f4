// Package statement reads the fields lablog indexes from an xAPI-like
// statement, as today's lab UIs POST them to /addLog. It is tolerant by
// design: real traffic has missing fields, nulls, extra fields and other
// shapes, and nothing a UI sends is ever refused. What cannot be read is
// left nil and said in Fields.Err; the body itself is always kept
// elsewhere, byte for byte. It does no I/O.
package statement

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
)

// Fields are the indexed parts of a statement; nil where absent, null, or
// of another type.
type Fields struct {
	User      *string // actor.id
	Course    *string // actor.course
	Device    *string // context.exp_id: the lab device, e.g. spin30
	Verb      *string // verb.name
	ObjectID  *string // object.id
	GraphNode *string // context.graph_node: a command for transition graphs
	Timestamp *int64  // timestamp: browser time, ms since the epoch
	Version   *string
	Type      *string
	Level     *string
	// Err says why the body, or a field of it, could not be read; "" when
	// every field present was read.
	Err string
}

// Parse reads the indexed fields of body.
func Parse(body []byte) Fields {
	var f Fields
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		var syn *json.SyntaxError
		switch {
		case len(bytes.TrimSpace(body)) == 0:
			f.Err = "empty body"
		case err != nil && errors.As(err, &syn):
			f.Err = "not JSON: " + err.Error()
		default:
			f.Err = "not a JSON object"
		}
		return f
	}
	var problems []string
	str := func(obj map[string]json.RawMessage, path, key string) *string {
		raw, ok := obj[key]
		if !ok || isNull(raw) {
			return nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			problems = append(problems, path+key+": not a string")
			return nil
		}
		return &s
	}
	object := func(key string) map[string]json.RawMessage {
		raw, ok := top[key]
		if !ok || isNull(raw) {
			return nil
		}
		var o map[string]json.RawMessage
		if err := json.Unmarshal(raw, &o); err != nil {
			problems = append(problems, key+": not an object")
			return nil
		}
		return o
	}
	actor, verb, obj, ctx := object("actor"), object("verb"), object("object"), object("context")
	f.User = str(actor, "actor.", "id")
	f.Course = str(actor, "actor.", "course")
	f.Verb = str(verb, "verb.", "name")
	f.ObjectID = str(obj, "object.", "id")
	f.Device = str(ctx, "context.", "exp_id")
	f.GraphNode = str(ctx, "context.", "graph_node")
	f.Version = str(top, "", "version")
	f.Type = str(top, "", "type")
	f.Level = str(top, "", "level")
	if raw, ok := top["timestamp"]; ok && !isNull(raw) {
		var n float64
		if err := json.Unmarshal(raw, &n); err != nil || math.IsInf(n, 0) || math.Abs(n) > math.MaxInt64/2 {
			problems = append(problems, "timestamp: not a number of milliseconds")
		} else {
			ms := int64(n)
			f.Timestamp = &ms
		}
	}
	if len(problems) > 0 {
		f.Err = strings.Join(problems, "; ")
	}
	return f
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
