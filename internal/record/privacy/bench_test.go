package privacy

import (
	"net/url"
	"testing"

	"github.com/practable/lablog/internal/record/frame"
)

// A typical 200-byte log message, three of them glued as the relay does
// under load, and a spinner statement: the cost added to each record at
// ingest when pseudonymising is on.
func BenchmarkRecord(b *testing.B) {
	msg := `{"user":"u-4f2c-student","t":1764165600000,"exp":"spinner","hardware":"spin30","course":"cie3","type":"log","payload":{"log":"voltage_step","v":3.5}}`
	st := frame.StatementData(url.Values{"username": {"u-4f2c"}, "course": {"ed1"}, "hardware": {"spinner"}},
		[]byte(`{"timestamp":1733000000000,"level":"INFO","type":"analytics","version":"1.1","actor":{"id":"u-4f2c","course":"ed1"},"verb":{"name":"clicked"},"object":{"id":"run-voltage-step","parent":"controls","ui":"spinner-3.0"},"context":{"event_type":"click","x":10,"y":20,"exp_id":"spin30","graph_node":"voltage_step"}}`))
	p := New(key)
	for _, c := range []struct {
		name string
		rec  frame.Record
	}{
		{"message", frame.Record{Kind: frame.Text, Data: []byte(msg)}},
		{"glued3", frame.Record{Kind: frame.Text, Data: []byte(msg + msg + msg)}},
		{"statement", frame.Record{Kind: frame.Statement, Data: st}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.rec.Data)))
			b.ReportAllocs()
			for b.Loop() {
				p.Record(c.rec)
			}
		})
	}
}

func BenchmarkID(b *testing.B) {
	p := New(key)
	b.ReportAllocs()
	for b.Loop() {
		p.ID("u-4f2c-student")
	}
}
