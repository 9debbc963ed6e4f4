package frame

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func rawOf(msgs []Message) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, m.Raw...)
	}
	return b
}

func TestSplitGluedFrame(t *testing.T) {
	a := `{"user":"u1","t":1673351988406,"exp":"spinner","hardware":"spin30","course":"engdes1","type":"log","payload":{"log":"voltage","data":{"set":0}}}`
	b := `{"user": "u1", "t": 1673351988407, "type": "response", "payload": {"score": NaN, "x": [Infinity, -Infinity]}}`
	c := `{"user":"u2","t":1673351988408.9,"payload":{"log":"speed"}}`
	msgs := Split([]byte(a + b + c))
	if len(msgs) != 3 {
		t.Fatalf("got %d messages, want 3: %+v", len(msgs), msgs)
	}
	for i, want := range []string{a, b, c} {
		if string(msgs[i].Raw) != want {
			t.Errorf("message %d raw = %q, want %q", i, msgs[i].Raw, want)
		}
		if msgs[i].Err != "" {
			t.Errorf("message %d: unexpected error %q", i, msgs[i].Err)
		}
	}
	m := msgs[0]
	if *m.User != "u1" || *m.T != 1673351988406 || *m.Exp != "spinner" || *m.Hardware != "spin30" ||
		*m.Course != "engdes1" || *m.Type != "log" || string(m.Payload) != `{"log":"voltage","data":{"set":0}}` {
		t.Errorf("fields of first message wrong: %+v", m)
	}
	if string(msgs[1].Payload) != `{"score": NaN, "x": [Infinity, -Infinity]}` || *msgs[1].Type != "response" {
		t.Errorf("NaN payload not kept as sent: %q", msgs[1].Payload)
	}
	legacy := msgs[2]
	if legacy.Exp != nil || legacy.Hardware != nil || legacy.Course != nil || legacy.Type != nil {
		t.Errorf("legacy message got fields it does not have: %+v", legacy)
	}
	if *legacy.T != 1673351988408 {
		t.Errorf("fractional t = %d, want truncated millis", *legacy.T)
	}
}

func TestSplitKeepsEveryByte(t *testing.T) {
	cases := map[string]string{
		"whitespace between":   " {\"a\":1} \n {\"b\":2}\n",
		"garbage after value":  `{"a":1}garbage{"b":2}`,
		"not json":             "hello world",
		"array top level":      `[1,2,3]{"a":"b"}`,
		"unterminated":         `{"a":"b`,
		"escapes":              `{"user":"a\"b\\c\u00e9","t":"notanumber"}`,
		"unicode":              `{"user":"Zoë 😀"}`,
		"only spaces":          "   ",
		"bad escape":           `{"a":"\q"}`,
		"trailing comma":       `{"a":1,}`,
		"number forms":         `{"a":-0.5e+10,"b":0,"c":1E3}`,
		"bad number":           `{"a":01}`,
		"control char":         "{\"a\":\"x\ty\"}",
		"nested empty":         `{"a":{},"b":[],"c":[{}]}`,
		"missing colon":        `{"a" 1}`,
		"deep but closed":      strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		"deep never closed":    strings.Repeat(`{"a":[`, 200000),
		"literal prefix":       `nul`,
		"negative infinity":    `-Infinity`,
		"value then truncated": `{"a":1}{"b":`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			msgs := Split([]byte(in))
			if len(msgs) == 0 {
				t.Fatal("no messages")
			}
			if got := rawOf(msgs); !bytes.Equal(got, []byte(in)) {
				t.Fatalf("raw parts do not concatenate back to the frame:\n got %q\nwant %q", got, in)
			}
		})
	}
}

func TestSplitErrors(t *testing.T) {
	cases := []struct {
		in      string
		n       int    // messages
		lastErr string // substring of the last message's error; "" means no error
	}{
		{"", 1, "empty frame"},
		{"\xff\xfe{}", 1, "invalid UTF-8"},
		{"hello", 1, "invalid JSON at byte 0"},
		{`{"a":1}garbage`, 2, "invalid JSON at byte 7"},
		{`[1,2]`, 1, "not a JSON object"},
		{`{"a":1,}`, 1, "expected a string key"},
		{`{"a":"b`, 1, "unexpected end in string"},
		{" \n ", 1, "no JSON value"},
		{strings.Repeat("[", 100000), 1, "unexpected end"},
		{`{"a":NaN}`, 1, ""},
		{`{"user":5,"t":"x"}`, 1, ""},
	}
	for _, c := range cases {
		msgs := Split([]byte(c.in))
		if len(msgs) != c.n {
			t.Errorf("Split(%.40q): %d messages, want %d", c.in, len(msgs), c.n)
			continue
		}
		last := msgs[len(msgs)-1]
		if c.lastErr == "" && last.Err != "" || !strings.Contains(last.Err, c.lastErr) {
			t.Errorf("Split(%.40q): last error %q, want %q", c.in, last.Err, c.lastErr)
		}
	}
}

func TestSplitOddFieldTypes(t *testing.T) {
	msgs := Split([]byte(`{"user":5,"t":"1673351988406","type":null,"payload":NaN}`))
	m := msgs[0]
	if m.Err != "" || m.User != nil || m.T != nil || m.Type != nil || string(m.Payload) != "NaN" {
		t.Errorf("odd field types not handled: %+v", m)
	}
}

// TestSplitAgreesWithEncodingJSON checks the scanner against the standard
// decoder on glued values that both accept.
func TestSplitAgreesWithEncodingJSON(t *testing.T) {
	in := `{"a":[1,2,{"b":"c\"}"}]}{"d":{"e":{"f":[[],{}]}}}  {"g":"\u2028"}`
	dec := json.NewDecoder(strings.NewReader(in))
	var want []string
	for dec.More() {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		want = append(want, string(v))
	}
	msgs := Split([]byte(in))
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, encoding/json found %d", len(msgs), len(want))
	}
	for i := range want {
		if strings.TrimSpace(string(msgs[i].Raw)) != want[i] {
			t.Errorf("message %d = %q, want %q", i, msgs[i].Raw, want[i])
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add([]byte(`{"user":"u","t":1,"payload":{"x":NaN}}{"user":"v"}`))
	f.Add([]byte(`{"a":"\u00e9"} [1] "s" 12 true`))
	f.Add([]byte("\xff"))
	f.Add([]byte(strings.Repeat("[", 300)))
	f.Fuzz(func(t *testing.T, in []byte) {
		msgs := Split(in)
		if len(msgs) == 0 {
			t.Fatal("no messages")
		}
		if !bytes.Equal(rawOf(msgs), in) {
			t.Fatalf("parts do not concatenate back to the frame")
		}
		for i, m := range msgs {
			if m.Err != "" && i != len(msgs)-1 && !strings.Contains(m.Err, "not a JSON object") {
				t.Fatalf("parse failure %q is not the last part", m.Err)
			}
			// A part that parsed cleanly and holds no NaN/Infinity must be
			// valid JSON to the standard library too.
			if m.Err == "" && !bytes.Contains(m.Raw, []byte("NaN")) && !bytes.Contains(m.Raw, []byte("Infinity")) && !json.Valid(m.Raw) {
				t.Fatalf("part %q accepted but not valid JSON", m.Raw)
			}
		}
	})
}

// The one-pass scanner of objects gives what scanning for the end, then
// reading the members, gave: the same end, fields and error for the value
// at the start of the input (Split applies it to each value in turn).
func FuzzSplitOnePassAgrees(f *testing.F) {
	for _, in := range []string{
		string(benchFrame),
		`{"user":"u","t":1,"payload":{"x":NaN}}{"user":"v"}`,
		`{"\u0075ser":"escaped key","user":"last wins","user":"really"}`,
		`{ "type" : "log" , "t" : 1.5e3 }` + "\n", `{"a":1,}`, ` {"user":"u"}`,
		`{"a":[1,2}`, `{"a" 1}`, `{"a":1 "b":2}`, `{}{ }[]`, `{"t":"x","payload":-Infinity}`,
		"{\"us\xffer\":1}", `{"user":"\ud800"}`, `{"a":{"b":`,
	} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		i := skipSpace(in, 0)
		if i == len(in) {
			return
		}
		var got, want Message
		gotEnd, gotErr := scanMessage(in, i, &got)
		wantEnd, wantErr := scanTwoPass(in, i, &want)
		if gotEnd != wantEnd || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("one pass: end %d, %v, %+v\ntwo passes: end %d, %v, %+v", gotEnd, gotErr, got, wantEnd, wantErr, want)
		}
	})
}

// unquoteJSON is what unquote must always agree with.
func unquoteJSON(s []byte) string {
	var out string
	if err := json.Unmarshal(s, &out); err != nil {
		return ""
	}
	return out
}

func TestUnquoteAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{`""`, `"u1"`, `"Zoë 😀"`, `"a\"b"`, `"a\\b"`, `"\u00e9"`, "\"tab\there\"", "\"bad \xff\"",
		`"unterminated`, `x`, `"`, `"a"b"`, "\"nul\x00\"", `"\ud800"`} {
		if got, want := unquote([]byte(s)), unquoteJSON([]byte(s)); got != want {
			t.Errorf("unquote(%q) = %q, encoding/json gives %q", s, got, want)
		}
	}
}

func FuzzUnquote(f *testing.F) {
	f.Add([]byte(`"plain"`))
	f.Add([]byte(`"esc\n\u0041"`))
	f.Add([]byte("\"\xc3\x28\""))
	f.Fuzz(func(t *testing.T, s []byte) {
		if got, want := unquote(s), unquoteJSON(s); got != want {
			t.Errorf("unquote(%q) = %q, encoding/json gives %q", s, got, want)
		}
	})
}

func TestField(t *testing.T) {
	obj := []byte(` {"log": "voltage", "data": {"log": "inner", "x": NaN}, "n": [1, {"a": 2}], "e": "a\"b"} `)
	for _, tc := range []struct {
		key  string
		want string
	}{{"log", `"voltage"`}, {"data", `{"log": "inner", "x": NaN}`}, {"n", `[1, {"a": 2}]`}, {"e", `"a\"b"`}, {"missing", ""}} {
		if got := string(Field(obj, tc.key)); got != tc.want {
			t.Errorf("Field(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if s := StringField(obj, "e"); s == nil || *s != `a"b` {
		t.Errorf("StringField(e) = %v", s)
	}
	if s := StringField(obj, "data"); s != nil {
		t.Errorf("StringField(data) = %q, want nil for an object", *s)
	}
	for _, bad := range []string{``, `[1]`, `"s"`, `{"log": "a"`, `{"log": "a"}{}`, `{"log" "a"}`} {
		if v := Field([]byte(bad), "log"); v != nil {
			t.Errorf("Field(%q) = %q, want nil", bad, v)
		}
	}
}
