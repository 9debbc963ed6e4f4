package archive

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/practable/lablog/internal/record/frame"
	"github.com/practable/lablog/internal/record/statement"
)

// Row is one row of an archive file: one message of a text frame, or a whole
// binary frame, or a connection event. Timestamps are plain integers so no
// time zone or monotonic clock can creep in; see ReceivedTime and TTime.
//
// The exact bytes of a frame are the concatenation of Raw (or RawBytes, for
// bytes that are not valid UTF-8) over its rows in Part order; for events
// they are Error (or RawBytes when the detail is not valid UTF-8).
//
// BufferID is the same in every row of a file: the buffer the records came
// from, nil for legacy records (and absent from format 1 files).
type Row struct {
	ReceivedAt  int64   `parquet:"received_at,timestamp(microsecond)"` // microseconds since the epoch, UTC
	BufferID    *string `parquet:"buffer_id,dict"`
	Seq         int64   `parquet:"seq"`
	Part        int32   `parquet:"part"`
	Kind        string  `parquet:"kind,dict"`
	ClockSynced bool    `parquet:"clock_synced"`
	User        *string `parquet:"user,dict"`
	Exp         *string `parquet:"exp,dict"`
	Hardware    *string `parquet:"hardware,dict"`
	Course      *string `parquet:"course,dict"`
	Type        *string `parquet:"type,dict"`
	T           *int64  `parquet:"t,timestamp(millisecond)"` // milliseconds since the epoch, as sent
	Payload     *string `parquet:"payload"`
	Raw         *string `parquet:"raw"`
	RawBytes    []byte  `parquet:"raw_bytes,optional"`
	Error       *string `parquet:"error"`  // why a message could not be parsed
	Detail      *string `parquet:"detail"` // an event's detail: the URL dialled, why a connection ended, ...
	// A statement's own columns (format 3): the /addLog call's query as
	// kept (frame.StatementData), and fields read from its body. user,
	// course, hardware, exp (the device), type and t (its timestamp) are
	// shared with messages.
	Query     *string `parquet:"query"`
	Verb      *string `parquet:"verb,dict"`
	ObjectID  *string `parquet:"object_id,dict"`
	GraphNode *string `parquet:"graph_node,dict"`
	Level     *string `parquet:"level,dict"`
	Version   *string `parquet:"version,dict"`
}

// The columns each format added: an older format's schema is Row's without
// the columns added after it, in the same order (see schemaBefore).
var (
	addedV2 = []string{"buffer_id", "detail"}
	addedV3 = []string{"query", "verb", "object_id", "graph_node", "level", "version"}
)

// ReceivedTime returns ReceivedAt as a UTC time.
func (r Row) ReceivedTime() time.Time { return time.UnixMicro(r.ReceivedAt).UTC() }

// TTime returns the message's own timestamp t, if it had one.
func (r Row) TTime() (time.Time, bool) {
	if r.T == nil {
		return time.Time{}, false
	}
	return time.UnixMilli(*r.T).UTC(), true
}

// KindMessage is the kind of rows holding a message of a text frame; the
// other kinds are frame.Kind names ("binary", "connected", ...).
const KindMessage = "message"

func kindName(k frame.Kind) string {
	if k == frame.Text {
		return KindMessage
	}
	return k.String() // unknown kinds keep their number: "kind(9)"
}

// kindOf reverses kindName.
func kindOf(name string) (frame.Kind, bool) {
	if name == KindMessage {
		return frame.Text, true
	}
	for k := frame.Binary; k <= frame.Statement; k++ {
		if k.String() == name {
			return k, true
		}
	}
	var n uint8
	if _, err := fmt.Sscanf(name, "kind(%d)", &n); err == nil && name == frame.Kind(n).String() {
		return frame.Kind(n), true
	}
	return 0, false
}

// appendRows converts one entry into its rows; id is the buffer_id column.
func appendRows(rows []Row, id *string, e Entry) []Row {
	base := Row{
		ReceivedAt:  e.Rec.Received.UnixMicro(),
		BufferID:    id,
		Seq:         int64(e.Seq),
		Kind:        kindName(e.Rec.Kind),
		ClockSynced: e.Rec.ClockSynced,
	}
	switch {
	case e.Rec.Kind == frame.Text:
		for i, m := range frame.Split(e.Rec.Data) {
			r := base
			r.Part = int32(i)
			r.User, r.Exp, r.Hardware, r.Course, r.Type, r.T = m.User, m.Exp, m.Hardware, m.Course, m.Type, m.T
			if m.Payload != nil {
				r.Payload = ptr(string(m.Payload))
			}
			r.Raw, r.RawBytes = text(m.Raw)
			if m.Err != "" {
				r.Error = ptr(m.Err)
			}
			rows = append(rows, r)
		}
	case e.Rec.Kind == frame.Statement:
		rows = append(rows, statementRow(base, e.Rec.Data))
	case e.Rec.Kind == frame.Binary:
		// A binary frame is bytes, not text, even when they happen to be UTF-8.
		base.RawBytes = clone(e.Rec.Data)
		rows = append(rows, base)
	default: // an event: its detail is the "frame"
		if utf8.Valid(e.Rec.Data) {
			base.Detail = ptr(string(e.Rec.Data))
		} else {
			base.Detail = ptr(strings.ToValidUTF8(string(e.Rec.Data), "\uFFFD"))
			base.RawBytes = clone(e.Rec.Data)
		}
		rows = append(rows, base)
	}
	return rows
}

// KindStatement is the kind of rows holding an /addLog call.
const KindStatement = "statement"

// statementRow is the one row of a statement: its query and body kept
// exactly, beside the fields lablog indexes (statement.ParseCall says
// whose call it is, in which course and on which kind of hardware).
func statementRow(r Row, data []byte) Row {
	query, body := frame.SplitStatement(data)
	r.Query = ptr(query)
	r.Raw, r.RawBytes = text(body)
	c := statement.ParseCall(query, body)
	r.User, r.Course, r.Hardware = c.User, c.Course, c.Hardware
	r.Exp, r.Type, r.T = c.Device, c.Type, c.Timestamp
	r.Verb, r.ObjectID, r.GraphNode, r.Level, r.Version = c.Verb, c.ObjectID, c.GraphNode, c.Level, c.Version
	if c.Err != "" {
		r.Error = ptr(c.Err)
	}
	return r
}

// text returns b as a string when it is valid UTF-8, else as bytes, so
// nothing is ever replaced by U+FFFD on the way in.
func text(b []byte) (*string, []byte) {
	if utf8.Valid(b) {
		return ptr(string(b)), nil
	}
	return nil, clone(b)
}

// textBytes is the size of r's variable-length columns: what a row group
// buffers.
func (r *Row) textBytes() int {
	n := len(r.RawBytes)
	for _, s := range []*string{r.Payload, r.Raw, r.Error, r.Detail, r.Query} {
		if s != nil {
			n += len(*s)
		}
	}
	return n
}

// appendFrameBytes appends the part of a frame (or event detail) that row
// r holds.
func (r *Row) appendFrameBytes(dst []byte) []byte {
	switch {
	case r.Kind == KindStatement:
		dst = append(append(dst, deref(r.Query)...), '\n')
		if r.RawBytes != nil {
			return append(dst, r.RawBytes...)
		}
		return append(dst, deref(r.Raw)...)
	case r.RawBytes != nil:
		return append(dst, r.RawBytes...)
	case r.Raw != nil && r.Kind == KindMessage:
		return append(dst, *r.Raw...)
	case r.Detail != nil && r.Kind != KindMessage && r.Kind != "binary":
		return append(dst, *r.Detail...)
	case r.Error != nil && r.Kind != KindMessage && r.Kind != "binary":
		return append(dst, *r.Error...) // format 1 kept an event's detail in error
	}
	return dst
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// clone copies b, never returning nil, so an empty value stays non-null.
func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// Checksum hashes frames in sequence order, each as: seq (8 bytes, big
// endian), kind (1 byte), length (8 bytes, big endian), exact bytes.
type Checksum struct{ h hash.Hash }

// NewChecksum returns an empty checksum.
func NewChecksum() *Checksum { return &Checksum{h: sha256.New()} }

// Add hashes one frame.
func (c *Checksum) Add(seq uint64, kind frame.Kind, data []byte) {
	var hdr [17]byte
	binary.BigEndian.PutUint64(hdr[0:8], seq)
	hdr[8] = byte(kind)
	binary.BigEndian.PutUint64(hdr[9:17], uint64(len(data)))
	c.h.Write(hdr[:])
	c.h.Write(data)
}

// String returns "sha256:<hex>".
func (c *Checksum) String() string { return "sha256:" + hex.EncodeToString(c.h.Sum(nil)) }

// Rows returns the rows an entry is archived as, the ones a Writer writes:
// for tools that must know a record's users (and so which messages of a
// joined frame are whose) before it is archived.
func Rows(e Entry) []Row { return appendRows(nil, idColumn(""), e) }

// FrameBytes returns the part of its frame (or event detail) that r holds:
// a frame's exact bytes are its rows' FrameBytes in part order.
func (r *Row) FrameBytes() []byte { return r.appendFrameBytes(nil) }

// KindOf returns the frame kind of a row's kind column.
func KindOf(name string) (frame.Kind, bool) { return kindOf(name) }
