package archive_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/frame"
)

// ScanMessages gives, column by column, what ReadRows gives for the same
// columns: nulls, glued frames, events, binary frames, several row groups.
func TestScanMessagesMatchesReadRows(t *testing.T) {
	var entries []archive.Entry
	for seq := uint64(1); seq <= 700; seq++ {
		var e archive.Entry
		switch seq % 7 {
		case 0:
			e = entry(seq, frame.Connected, "wss://relay/session/spin30-log")
		case 1:
			e = entry(seq, frame.Binary, "\x00\x01\xff")
		case 2:
			e = entry(seq, frame.Text, fmt.Sprintf(`{"user":"u%d","t":%d,"payload":{"log":"voltage"}}{"type":"response","payload":NaN}`, seq%5, seq))
		case 3:
			e = entry(seq, frame.Text, `not json`)
		default:
			e = entry(seq, frame.Text, fmt.Sprintf(`{"user":"u%d","t":%d,"exp":"spinner","hardware":"spin30","course":"c","type":"log","payload":{"log":"speed","data":{"set":%d}}}`, seq%5, seq, seq))
		}
		entries = append(entries, e)
	}
	path := write(t, t.TempDir(), "spin30", hour14, archive.Options{RowGroupRows: 100, BufferID: "0123456789abcdef"}, entries...)
	rows, meta, err := archive.ReadRows(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []archive.MessageRow
	m2, err := archive.ScanMessages(path, func(r *archive.MessageRow) error {
		got = append(got, *r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m2 != meta || len(got) != len(rows) || len(rows) < 300 {
		t.Fatalf("%d rows scanned, %d read; meta %+v vs %+v", len(got), len(rows), m2, meta)
	}
	for i, r := range rows {
		want := archive.MessageRow{ReceivedAt: r.ReceivedAt, Seq: r.Seq, Part: r.Part, Kind: r.Kind, User: r.User, Exp: r.Exp,
			Hardware: r.Hardware, Course: r.Course, Type: r.Type, T: r.T, Error: r.Error}
		if r.Payload != nil {
			want.Payload = []byte(*r.Payload)
		}
		g := got[i]
		if !bytes.Equal(g.Payload, want.Payload) || (g.Payload == nil) != (want.Payload == nil) {
			t.Fatalf("row %d payload %q, want %q", i, g.Payload, want.Payload)
		}
		g.Payload, want.Payload = nil, nil
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, g, want)
		}
	}
}
