package frame

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// benchFrame is three glued messages of the usual shapes, about 700 bytes.
var benchFrame = []byte(`{"user":"u0042","t":1764169198000,"exp":"spinner","hardware":"spin30","course":"ENG1","type":"log","payload":{"log":"voltage","data":3.141593}}` +
	`{"user": "u0042", "t": 1764169198037, "type": "response", "payload": {"score": NaN, "ok": true, "hints": ["a", "b"]}}` +
	`{"user":"u0043","t":1764169198074,"exp":"spinner","course":"ENG1","type":"analytics","payload":{"log":"achievement","data":{"level":3,"name":"steady","at":[1,2,3,4,5,6,7,8]}}}`)

// BenchmarkSplit splits and parses a glued frame, as archiving does for
// every text frame.
func BenchmarkSplit(b *testing.B) {
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		if len(Split(benchFrame)) != 3 {
			b.Fatal("want 3 messages")
		}
	}
}

// BenchmarkField reads payload.log, as the analytics do.
func BenchmarkField(b *testing.B) {
	payload := []byte(`{"log":"voltage","data":3.141593,"more":{"a":[1,2,3]},"z":NaN}`)
	for b.Loop() {
		if !bytes.Equal(Field(payload, "z"), []byte("NaN")) {
			b.Fatal("want NaN")
		}
	}
}

// BenchmarkBaselineValid is a baseline for the two above: a UTF-8 check
// of the same frame, code that nothing here changes.
func BenchmarkBaselineValid(b *testing.B) {
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		if !utf8.Valid(benchFrame) {
			b.Fatal("invalid")
		}
	}
}
