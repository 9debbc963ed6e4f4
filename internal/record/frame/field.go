package frame

// Span is the place of a value in a JSON text: Start inclusive, End exclusive.
type Span struct{ Start, End int }

// FieldSpans returns where every value of the top-level key of the object
// obj is, in order (a key written twice has two); nil when obj is not a
// well-formed object (NaN tolerated, as by Split) or has no such key. Keys
// are compared decoded, so "\u0075ser" is "user". Privacy rewrites values
// in place with it, keeping every other byte of the text.
func FieldSpans(obj []byte, key string) []Span {
	i := skipSpace(obj, 0)
	if i == len(obj) || obj[i] != '{' {
		return nil
	}
	end, err := scanValue(obj, i)
	if err != nil || skipSpace(obj, end) != len(obj) {
		return nil
	}
	var spans []Span
	for j := skipSpace(obj, i+1); obj[j] != '}'; {
		keyEnd, _ := scanString(obj, j)
		k := unquote(obj[j:keyEnd])
		j = skipSpace(obj, keyEnd)
		j = skipSpace(obj, j+1) // past ':'
		valEnd, _ := scanValue(obj, j)
		if k == key {
			spans = append(spans, Span{j, valEnd})
		}
		j = skipSpace(obj, valEnd)
		if obj[j] == ',' {
			j = skipSpace(obj, j+1)
		}
	}
	return spans
}

// Unquote decodes a JSON string token; ok is false when s is not one.
func Unquote(s []byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", false
	}
	if end, err := scanString(s, 0); err != nil || end != len(s) {
		return "", false
	}
	return unquote(s), true
}
