package compactor

import (
	"context"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/subject"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// filterOut is the compactor filter of the tombstone list for user.
func filterOut(user string) func(uint64, frame.Record) (frame.Record, bool) {
	return func(seq uint64, r frame.Record) (frame.Record, bool) {
		out, keep, _ := subject.Filter(seq, r, subject.One(user))
		return out, keep
	}
}

// userRows counts each user's rows in the archive.
func (f *fixture) userRows() map[string]int {
	f.t.Helper()
	files, err := archive.Files(f.root)
	if err != nil {
		f.t.Fatal(err)
	}
	got := map[string]int{}
	for _, af := range files {
		if _, err := archive.ScanMessages(af.Path, func(r *archive.MessageRow) error {
			if r.User != nil {
				got[*r.User]++
			}
			return nil
		}); err != nil {
			f.t.Fatal(err)
		}
	}
	return got
}

// A tombstoned user's rows never reach the archive, the other users' do,
// and the buffer is emptied of both, even of a group (spin31) and of a
// group's first and last records that were the user's alone.
func TestFilterKeepsTombstonedUserOut(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Filter = filterOut("u1")
	h := frame.Hour(t0.Add(-2 * time.Hour))
	f.record(h, 30, "spin30") // users u0, u1, u2 in turn; frames of one user
	recs := []frame.Record{
		{Stream: "spin32", Received: h, Kind: frame.Text, Data: []byte(`{"user":"u1"}`)},
		{Stream: "spin32", Received: h, Kind: frame.Text, Data: []byte(`{"user":"u0"}{"user":"u1"}`)},
		{Stream: "spin32", Received: h, Kind: frame.Text, Data: []byte(`{"user":"u1"}`)},
		{Stream: "spin31", Received: h, Kind: frame.Text, Data: []byte(`{"user":"u1"}`)},
	}
	if err := f.db.Append(recs); err != nil {
		t.Fatal(err)
	}
	res := f.c.RunOnce(context.Background())
	if res.Err != nil || res.Files != 2 || res.Records != 34 {
		t.Fatalf("result %+v, want 2 files of the 34 records scanned", res)
	}
	got := f.userRows()
	if got["u1"] != 0 || got["u0"] != 2*10+1 || got["u2"] != 2*10 {
		t.Fatalf("archived rows by user %v", got)
	}
	if n := f.archived(); n["spin31"] != 0 || n["spin32"] != 1 {
		t.Fatalf("archived frames %v", n)
	}
	if f.pending() != 0 {
		t.Fatalf("%d records left in the buffer", f.pending())
	}
}

// Killed between publish and settle, the next run (same filter) finds the
// file holds the filtered records and settles them, rather than calling
// it a conflict.
func TestFilteredCrashBetweenPublishAndDelete(t *testing.T) {
	f := newFixture(t)
	f.c.opts.Filter = filterOut("u1")
	h := frame.Hour(t0.Add(-2 * time.Hour))
	f.record(h, 30, "spin30")
	w, err := archive.Create(f.root, "spin30", h, archive.Options{BufferID: f.db.ID()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Scan(f.group("spin30", h), 0, ^uint64(0), func(seq uint64, r frame.Record) error {
		if r, keep := f.c.opts.Filter(seq, r); keep {
			return w.Add(archive.Entry{Seq: seq, Rec: r})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(); err != nil {
		t.Fatal(err)
	}
	res := f.c.RunOnce(context.Background())
	if res.Err != nil || res.Files != 0 {
		t.Fatalf("result %+v", res)
	}
	if got := f.archived(); got["spin30"] != 20 {
		t.Fatalf("archived %v, want the 20 frames of u0 and u2", got)
	}
	if f.pending() != 0 {
		t.Fatalf("%d records left in the buffer", f.pending())
	}
}
