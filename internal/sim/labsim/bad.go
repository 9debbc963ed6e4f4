package labsim

import "bytes"

// badKind is a kind of frame that is not one well-formed JSON message; the
// recorder must keep each byte for byte.
type badKind int

const (
	badText      badKind = iota // plain text, not JSON
	badUTF8                     // JSON-looking, with invalid UTF-8
	badEmpty                    // a zero-length text frame
	badBinary                   // a binary frame
	badTruncated                // a message cut short
	badDeep                     // 100k nested arrays, a parser stack bomb
	numBadKinds
)

// deepNesting is shared: it is large and never changes.
var deepNesting = bytes.Repeat([]byte("["), 100_000)

// pickBad chooses a kind; the 100 KB stack bomb is rare so that a long demo
// is not mostly nesting.
func (g *gen) pickBad() badKind {
	if g.rng.IntN(50) == 0 {
		return badDeep
	}
	return badKind(g.rng.IntN(int(badDeep)))
}

// badFrame makes a frame of kind k and says whether it is binary.
func (g *gen) badFrame(k badKind) ([]byte, bool) {
	switch k {
	case badText:
		return []byte("lab ui: reconnecting to " + g.hardware), false
	case badUTF8:
		return []byte("{\"user\":\"\xff\xfe\xfd\",\"t\":1}"), false
	case badEmpty:
		return []byte{}, false
	case badBinary:
		b := make([]byte, 8+g.rng.IntN(57))
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		return b, true
	case badTruncated:
		return []byte(`{"user":"` + g.user + `","t":17000000,"exp":"` + g.exp + `","payload":{"log":"volt`), false
	default:
		return deepNesting, false
	}
}
