package privacy

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/statement"
)

var key = bytes.Repeat([]byte{7}, KeySize)

func TestIDIsKeyedStableAndRecognisable(t *testing.T) {
	p, q := New(key), New(bytes.Repeat([]byte{8}, KeySize))
	a := p.ID("u-4f2c")
	if a != p.ID("u-4f2c") {
		t.Fatal("the same id gave two pseudonyms")
	}
	if a == p.ID("u-4f2d") || a == q.ID("u-4f2c") {
		t.Fatal("another id or another key gave the same pseudonym")
	}
	if !IsPseudonym(a) || IsPseudonym("u-4f2c") || strings.Contains(a, "4f2c") {
		t.Fatalf("pseudonym %q", a)
	}
	if p.ID("") != "" {
		t.Fatal("an empty id must stay empty")
	}
	if p.KeyID() == q.KeyID() || strings.Contains(p.KeyID(), "0707") {
		t.Fatal("key ids")
	}
}

func TestFrameRewritesEveryUserAndKeepsEveryOtherByte(t *testing.T) {
	p := New(key)
	// Three glued messages (one with NaN in its payload, one with an
	// escaped key and id, one legacy), then a broken tail.
	in := `{"user":"alice","t":1,"payload":{"user":"x","v":NaN}} {"\u0075ser" : "b\u006fb", "type":"log"}` + "\n" +
		`{"payload":1,"user":12345}`
	got := string(p.Frame([]byte(in)))
	want := `{"user":"` + p.ID("alice") + `","t":1,"payload":{"user":"x","v":NaN}} {"\u0075ser" : "` + p.ID("bob") + `", "type":"log"}` + "\n" +
		`{"payload":1,"user":"` + p.ID("12345") + `"}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	msgs := frame.Split([]byte(got))
	if len(msgs) != 3 || *msgs[0].User != p.ID("alice") || *msgs[1].User != p.ID("bob") {
		t.Fatalf("split after rewrite: %+v", msgs)
	}
	for _, keep := range []string{`{"user":null}`, `not json "user":"alice"`, `[{"user":"a"}]`, `{"t":1}`} {
		if out := p.Frame([]byte(keep)); string(out) != keep {
			t.Errorf("%s became %s", keep, out)
		}
	}
}

func TestStatementRewritesUsernameAndActorID(t *testing.T) {
	p := New(key)
	body := `{"timestamp": 1733000000000, "actor":   {"course": "ed1", "id": "u-4f2c"},` + "\n" +
		` "verb": {"name": "clicked"}, "object": {"id": "run-voltage-step", "value": "é"}}`
	q := url.Values{"username": {"u-4f2c"}, "course": {"ed1"}, "hardware": {"spinner"}}
	rec := p.Record(frame.Record{Kind: frame.Statement, Data: frame.StatementData(q, []byte(body))})
	gotQ, gotBody := frame.SplitStatement(rec.Data)
	if bytes.Contains(rec.Data, []byte("u-4f2c")) {
		t.Fatalf("raw id kept: %s", rec.Data)
	}
	pq, _ := url.ParseQuery(gotQ)
	if pq.Get("username") != p.ID("u-4f2c") || pq.Get("course") != "ed1" || pq.Get("hardware") != "spinner" {
		t.Fatalf("query %s", gotQ)
	}
	want := strings.Replace(body, `"u-4f2c"`, `"`+p.ID("u-4f2c")+`"`, 1)
	if string(gotBody) != want {
		t.Fatalf("body\n got %s\nwant %s", gotBody, want)
	}
	if f := statement.Parse(gotBody); *f.User != p.ID("u-4f2c") || *f.ObjectID != "run-voltage-step" {
		t.Fatalf("parsed %+v", f)
	}
	// A body lablog cannot read is kept; the query is still rewritten.
	rec = p.Record(frame.Record{Kind: frame.Statement, Data: frame.StatementData(url.Values{"username": {"zed"}}, []byte("{oops"))})
	if string(rec.Data) != "username="+p.ID("zed")+"\n{oops" {
		t.Fatalf("got %q", rec.Data)
	}
}

func TestOtherKindsAndNilPseudonymiserPassThrough(t *testing.T) {
	p := New(key)
	for _, k := range []frame.Kind{frame.Binary, frame.Connected, frame.Disconnected, frame.Overflow} {
		data := []byte(`{"user":"alice"}`)
		if got := p.Record(frame.Record{Kind: k, Data: data}); string(got.Data) != string(data) {
			t.Errorf("%v rewritten", k)
		}
	}
	var seen []frame.Record
	next := func(r frame.Record) bool { seen = append(seen, r); return true }
	var nilP *Pseudonymiser
	nilP.Enqueue(next)(frame.Record{Kind: frame.Text, Data: []byte(`{"user":"a"}`)})
	p.Enqueue(next)(frame.Record{Kind: frame.Text, Data: []byte(`{"user":"a"}`)})
	if string(seen[0].Data) != `{"user":"a"}` || string(seen[1].Data) != `{"user":"`+p.ID("a")+`"}` {
		t.Fatalf("%+v", seen)
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pseudonym-key")
	if _, _, err := LoadKey(path, false); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key: %v", err)
	}
	k1, created, err := LoadKey(path, true)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("generate: %v %v %d", err, created, len(k1))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	k2, created, err := LoadKey(path, true)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v %v", err, created)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadKey(path, true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("shared key accepted: %v", err)
	}
	for content, why := range map[string]string{"zz\n": "not hex", "abcd\n": "want at least"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadKey(path, true); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v", content, err)
		}
	}
}
