// Package privacy pseudonymises user ids at ingest. With it on, a keyed
// HMAC of the id takes the id's place before a record reaches the buffer,
// so the raw id is written nowhere lablog writes: not in the buffer, the
// archive, the analytics state, the bucket, the logs or the status page.
// The same key gives the same pseudonym, so a student's records still link
// to each other, and a service holding the key (the dashboards' API) can
// hash the id of a request the same way to find them. Without the key a
// pseudonym cannot be turned back into the id, nor an id into its
// pseudonym. It does no I/O except in LoadKey.
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"hash"
	"net/url"
	"strings"
	"sync"

	"github.com/practable/lablog/internal/record/frame"
)

// Prefix starts every pseudonym, so one is recognisable in the data (and
// told apart from a raw id) at a glance; "1" is the format's version.
const Prefix = "ps1-"

// idBytes is how much of the HMAC a pseudonym keeps: 128 bits, so two of
// even millions of ids collide with negligible probability, in 26
// characters.
const idBytes = 16

// domain separates this use of the key from any other.
const domain = "lablog user id v1\x00"

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Pseudonymiser replaces user ids with their pseudonyms. It is safe for
// concurrent use.
type Pseudonymiser struct {
	key []byte
	// macs are keyed HMACs ready for Reset: keying one costs two SHA-256
	// blocks and allocations that every record would otherwise pay.
	macs sync.Pool
}

// New makes a Pseudonymiser with key (see LoadKey), which it copies.
func New(key []byte) *Pseudonymiser {
	p := &Pseudonymiser{key: append([]byte(nil), key...)}
	p.macs.New = func() any { return hmac.New(sha256.New, p.key) }
	return p
}

// ID is the pseudonym of the user id raw: Prefix then 26 lower-case base32
// characters of HMAC-SHA256(key, raw). An empty id stays empty: it names
// no one, and a plain run's empty user should map to an empty one.
func (p *Pseudonymiser) ID(raw string) string {
	if raw == "" {
		return ""
	}
	m := p.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(domain))
	m.Write([]byte(raw))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	p.macs.Put(m)
	var out [len(Prefix) + 26]byte
	copy(out[:], Prefix)
	enc.Encode(out[len(Prefix):], sum[:idBytes])
	return string(out[:])
}

// KeyID names the key without revealing it: the status page and the log
// show it so that a changed key (which breaks the link between old and new
// pseudonyms) is noticed.
func (p *Pseudonymiser) KeyID() string {
	h := sha256.Sum256(append([]byte("lablog key id\x00"), p.key...))
	return hex.EncodeToString(h[:6])
}

// Record returns r with its user ids pseudonymised: the top-level "user"
// of every message of a text frame, and the username parameter and
// actor.id of a statement. Other kinds (binary frames, connection events)
// carry no user id and are returned as they are.
func (p *Pseudonymiser) Record(r frame.Record) frame.Record {
	switch r.Kind {
	case frame.Text:
		r.Data = p.Frame(r.Data)
	case frame.Statement:
		r.Data = p.Statement(r.Data)
	}
	return r
}

// Frame rewrites the "user" field of each JSON message in a text frame
// (the relay glues several into one), keeping every other byte. A message
// that cannot be parsed is kept as it is: its fields cannot be told apart.
func (p *Pseudonymiser) Frame(data []byte) []byte {
	var out []byte
	off, last := 0, 0
	for _, m := range frame.Split(data) {
		if m.Err == "" {
			for _, s := range frame.FieldSpans(m.Raw, "user") {
				v, ok := p.value(m.Raw[s.Start:s.End])
				if !ok {
					continue
				}
				if out == nil {
					out = make([]byte, 0, len(data)+32)
				}
				out = append(out, data[last:off+s.Start]...)
				out = append(out, v...)
				last = off + s.End
			}
		}
		off += len(m.Raw)
	}
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}

// Statement rewrites a Statement record's envelope (frame.StatementData):
// the username query parameter and every actor.id of the body; the rest
// of the body is kept byte for byte.
func (p *Pseudonymiser) Statement(data []byte) []byte {
	q, body := frame.SplitStatement(data)
	if query, err := url.ParseQuery(q); err == nil && query.Has("username") {
		query.Set("username", p.ID(query.Get("username")))
		q = query.Encode()
	}
	out := make([]byte, 0, len(data)+32)
	out = append(out, q...)
	out = append(out, '\n')
	last := 0
	for _, a := range frame.FieldSpans(body, "actor") {
		actor := body[a.Start:a.End]
		for _, s := range frame.FieldSpans(actor, "id") {
			v, ok := p.value(actor[s.Start:s.End])
			if !ok {
				continue
			}
			out = append(out, body[last:a.Start+s.Start]...)
			out = append(out, v...)
			last = a.Start + s.End
		}
	}
	return append(out, body[last:]...)
}

// value is the JSON text that replaces the id value v: the pseudonym of a
// string, or of a number's digits (an id sent as a number is still an id);
// ok is false for anything else (null, objects), which is left alone.
func (p *Pseudonymiser) value(v []byte) ([]byte, bool) {
	var raw string
	switch {
	case len(v) > 0 && v[0] == '"':
		s, ok := frame.Unquote(v)
		if !ok {
			return nil, false
		}
		raw = s
	case len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9'):
		raw = string(v)
	default:
		return nil, false
	}
	return []byte(`"` + p.ID(raw) + `"`), true
}

// IsPseudonym reports whether s has a pseudonym's form.
func IsPseudonym(s string) bool {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok || len(rest) != enc.EncodedLen(idBytes) {
		return false
	}
	_, err := enc.DecodeString(rest)
	return err == nil
}

// Enqueue returns an enqueue that pseudonymises each record before handing
// it to next (the buffer writer's Enqueue): the one place both doors, the
// websocket sources and /addLog, pass through. A nil p returns next.
func (p *Pseudonymiser) Enqueue(next func(frame.Record) bool) func(frame.Record) bool {
	if p == nil {
		return next
	}
	return func(r frame.Record) bool { return next(p.Record(r)) }
}
