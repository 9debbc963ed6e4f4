package subject

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// Line is one exported row: where it was found, and the row's columns.
// Raw holds the message's exact text; RawBytes (base64 in JSON) bytes that
// were not UTF-8.
type Line struct {
	Source     string    `json:"source"`         // buffer, drive or bucket
	File       string    `json:"file,omitempty"` // the archive file or object
	Stream     string    `json:"stream"`
	BufferID   *string   `json:"buffer_id"`
	Seq        int64     `json:"seq"`
	Part       int32     `json:"part"`
	Kind       string    `json:"kind"`
	ReceivedAt time.Time `json:"received_at"`
	User       *string   `json:"user"`
	Exp        *string   `json:"exp"`
	Hardware   *string   `json:"hardware"`
	Course     *string   `json:"course"`
	Type       *string   `json:"type"`
	T          *int64    `json:"t"`
	Query      *string   `json:"query,omitempty"`
	Verb       *string   `json:"verb,omitempty"`
	ObjectID   *string   `json:"object_id,omitempty"`
	GraphNode  *string   `json:"graph_node,omitempty"`
	Raw        *string   `json:"raw"`
	RawBytes   []byte    `json:"raw_bytes,omitempty"`
	Error      *string   `json:"error,omitempty"`
}

// DayCount is a user's rows in one stream on one UTC day.
type DayCount struct {
	Stream string `json:"stream"`
	Date   string `json:"date"`
	Rows   int64  `json:"rows"`
}

// Summary is what an export found.
type Summary struct {
	UserSHA256 string         `json:"user_sha256"`
	Rows       int64          `json:"rows"`
	BySource   map[string]int `json:"rows_by_source"`
	Files      int            `json:"files"` // archive files and objects with a row of the user
	First      *time.Time     `json:"first,omitempty"`
	Last       *time.Time     `json:"last,omitempty"`
	Days       []DayCount     `json:"by_stream_and_day"`
}

// Exporter writes a user's rows as JSON lines and keeps the summary.
type Exporter struct {
	enc   *json.Encoder
	m     Matcher
	sum   Summary
	days  map[[2]string]int64
	first time.Time
	last  time.Time
}

// NewExporter writes user's rows to w.
func NewExporter(w io.Writer, user string) *Exporter {
	return &Exporter{enc: json.NewEncoder(w), m: One(user), days: map[[2]string]int64{},
		sum: Summary{UserSHA256: Hash(user), BySource: map[string]int{}}}
}

// File exports the user's rows of one archive file (source "drive") or
// downloaded object ("bucket"); name is how the output names it.
func (x *Exporter) File(source, path, name string) error {
	c, err := Count(path, x.m)
	if err != nil || c.Rows == 0 {
		return err
	}
	x.sum.Files++
	_, err = archive.Scan(path, func(r *archive.Row) error {
		if r.User == nil || !x.m(*r.User) {
			return nil
		}
		return x.row(source, name, c.Meta.Stream, r)
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	return nil
}

// Record exports the user's rows of one buffer record.
func (x *Exporter) Record(seq uint64, bufferID string, rec frame.Record) error {
	rows := archive.Rows(archive.Entry{Seq: seq, Rec: rec})
	for i := range rows {
		r := &rows[i]
		if r.User == nil || !x.m(*r.User) {
			continue
		}
		if bufferID != "" {
			r.BufferID = &bufferID
		}
		if err := x.row("buffer", "", rec.Stream, r); err != nil {
			return err
		}
	}
	return nil
}

func (x *Exporter) row(source, file, stream string, r *archive.Row) error {
	at := r.ReceivedTime()
	l := Line{Source: source, File: file, Stream: stream, BufferID: r.BufferID, Seq: r.Seq, Part: r.Part, Kind: r.Kind,
		ReceivedAt: at, User: r.User, Exp: r.Exp, Hardware: r.Hardware, Course: r.Course, Type: r.Type, T: r.T,
		Query: r.Query, Verb: r.Verb, ObjectID: r.ObjectID, GraphNode: r.GraphNode, Raw: r.Raw, RawBytes: r.RawBytes, Error: r.Error}
	if err := x.enc.Encode(l); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	x.sum.Rows++
	x.sum.BySource[source]++
	x.days[[2]string{stream, at.Format("2006-01-02")}]++
	if x.first.IsZero() || at.Before(x.first) {
		x.first = at
	}
	if at.After(x.last) {
		x.last = at
	}
	return nil
}

// Summary returns the counts so far.
func (x *Exporter) Summary() Summary {
	s := x.sum
	s.Days = []DayCount{}
	for k, n := range x.days {
		s.Days = append(s.Days, DayCount{Stream: k[0], Date: k[1], Rows: n})
	}
	sort.Slice(s.Days, func(i, j int) bool {
		a, b := s.Days[i], s.Days[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Date < b.Date
	})
	if s.Rows > 0 {
		f, l := x.first, x.last
		s.First, s.Last = &f, &l
	}
	return s
}
