package archive

import (
	"errors"
	"fmt"
)

// Parquet's metadata (the footer, page headers, the page index) is Thrift's
// compact protocol, and parquet-go's decoder allocates every length and
// count it reads before it reads what they count: one flipped bit can ask
// for gigabytes, and a Go program cannot recover from running out of
// memory. compactStruct walks the encoding without allocating and refuses a
// length or count larger than the bytes left, which no intact encoding has
// (every element takes at least one byte); what passes decodes within the
// size of its bytes.

var errCompact = errors.New("not Thrift compact metadata")

// maxNesting bounds structs, lists and maps within each other: parquet's
// deepest is a few levels, and a damaged type byte must not recurse without end.
const maxNesting = 16

// compactStruct returns the length of the struct that b begins with.
func compactStruct(b []byte) (int, error) {
	rest, err := skipStruct(b, 0)
	if err != nil {
		return 0, err
	}
	return len(b) - len(rest), nil
}

func skipStruct(b []byte, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("%w: nested deeper than %d", errCompact, maxNesting)
	}
	for {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: struct runs past the end", errCompact)
		}
		h := b[0]
		b = b[1:]
		if h == 0 { // stop
			return b, nil
		}
		if h>>4 == 0 { // the field id in full, after the header
			var err error
			if _, b, err = uvarint(b); err != nil {
				return nil, err
			}
		}
		var err error
		if b, err = skipValue(b, h&0x0f, depth, false); err != nil {
			return nil, err
		}
	}
}

// skipValue skips one value of a compact type; inList says it is a list's
// element, where a boolean takes a byte rather than living in the type.
func skipValue(b []byte, typ byte, depth int, inList bool) ([]byte, error) {
	switch typ {
	case 1, 2: // boolean
		if inList {
			return skipBytes(b, 1)
		}
		return b, nil
	case 3: // byte
		return skipBytes(b, 1)
	case 4, 5, 6: // i16, i32, i64
		_, b, err := uvarint(b)
		return b, err
	case 7: // double
		return skipBytes(b, 8)
	case 8: // binary
		n, b, err := uvarint(b)
		if err != nil {
			return nil, err
		}
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %d bytes with %d left", errCompact, n, len(b))
		}
		return b[n:], nil
	case 9, 10: // list, set
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: list runs past the end", errCompact)
		}
		n, elem := uint64(b[0]>>4), b[0]&0x0f
		b = b[1:]
		if n == 15 {
			var err error
			if n, b, err = uvarint(b); err != nil {
				return nil, err
			}
		}
		return skipElements(b, n, depth, elem)
	case 11: // map
		n, b, err := uvarint(b)
		if err != nil || n == 0 {
			return b, err
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: map runs past the end", errCompact)
		}
		kv := b[0]
		b = b[1:]
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %d map entries with %d bytes left", errCompact, n, len(b))
		}
		for range n {
			if b, err = skipNested(b, kv>>4, depth); err != nil {
				return nil, err
			}
			if b, err = skipNested(b, kv&0x0f, depth); err != nil {
				return nil, err
			}
		}
		return b, nil
	case 12: // struct
		return skipStruct(b, depth+1)
	default:
		return nil, fmt.Errorf("%w: type %d", errCompact, typ)
	}
}

func skipElements(b []byte, n uint64, depth int, elem byte) ([]byte, error) {
	if n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d list elements with %d bytes left", errCompact, n, len(b))
	}
	var err error
	for range n {
		if b, err = skipNested(b, elem, depth); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func skipNested(b []byte, typ byte, depth int) ([]byte, error) {
	if depth+1 > maxNesting {
		return nil, fmt.Errorf("%w: nested deeper than %d", errCompact, maxNesting)
	}
	return skipValue(b, typ, depth+1, true)
}

func skipBytes(b []byte, n int) ([]byte, error) {
	if len(b) < n {
		return nil, fmt.Errorf("%w: value runs past the end", errCompact)
	}
	return b[n:], nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, b[i+1:], nil
		}
	}
	return 0, nil, fmt.Errorf("%w: bad varint", errCompact)
}
