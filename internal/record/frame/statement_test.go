package frame

import (
	"bytes"
	"net/url"
	"testing"
)

func TestStatementEnvelopeRoundTrips(t *testing.T) {
	q := url.Values{"username": {"u\n1&x=y"}, "course": {"ed1"}, "hardware": {""}}
	for _, body := range [][]byte{[]byte(`{"verb":{"name":"clicked"}}`), {}, []byte("\n\nnot json\xff"), nil} {
		data := StatementData(q, body)
		gotQ, gotB := SplitStatement(data)
		if gotQ != "course=ed1&hardware=&username=u%0A1%26x%3Dy" || !bytes.Equal(gotB, body) {
			t.Errorf("body %q: got query %q body %q", body, gotQ, gotB)
		}
		back, err := url.ParseQuery(gotQ)
		if err != nil || back.Get("username") != "u\n1&x=y" || !back.Has("hardware") {
			t.Errorf("query %q does not parse back: %v %v", gotQ, back, err)
		}
	}
}

func FuzzStatementEnvelope(f *testing.F) {
	f.Add("u", "c", "spinner", []byte(`{}`))
	f.Fuzz(func(t *testing.T, user, course, hw string, body []byte) {
		q := url.Values{"username": {user}, "course": {course}, "hardware": {hw}}
		gotQ, gotB := SplitStatement(StatementData(q, body))
		back, err := url.ParseQuery(gotQ)
		if err != nil || !bytes.Equal(gotB, body) {
			t.Fatalf("round trip: %q %q %v", gotQ, gotB, err)
		}
		// ParseQuery keeps only valid UTF-8 as given; compare the encodings.
		if back.Encode() != q.Encode() {
			t.Fatalf("query %q came back as %q", q.Encode(), back.Encode())
		}
	})
}
