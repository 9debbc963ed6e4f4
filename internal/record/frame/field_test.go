package frame

import (
	"reflect"
	"testing"
)

func TestFieldSpans(t *testing.T) {
	obj := ` {"user":"a", "t":NaN, "\u0075ser" : 12, "p":{"user":"x"}, "user":null} `
	var got []string
	for _, s := range FieldSpans([]byte(obj), "user") {
		got = append(got, obj[s.Start:s.End])
	}
	if want := []string{`"a"`, `12`, `null`}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q (top level only, every one, escaped keys too)", got, want)
	}
	for _, bad := range []string{``, `[{"user":"a"}]`, `{"user":"a"`, `{"user":"a"} {"user":"b"}`, `"user"`} {
		if s := FieldSpans([]byte(bad), "user"); s != nil {
			t.Errorf("%q: %v", bad, s)
		}
	}
	for in, want := range map[string]string{`"a\u0062"`: "ab", `"é"`: "é"} {
		if s, ok := Unquote([]byte(in)); !ok || s != want {
			t.Errorf("Unquote(%s) = %q %v", in, s, ok)
		}
	}
	for _, bad := range []string{`"a`, `a"`, `"a"x`, `12`, ``} {
		if _, ok := Unquote([]byte(bad)); ok {
			t.Errorf("Unquote(%s) accepted", bad)
		}
	}
}
