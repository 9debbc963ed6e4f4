package frame

// Span is the place of a value in a JSON text: Start inclusive, End exclusive.
type Span struct{ Start, End int }

// FieldSpans returns where every value of the top-level key of the object
// obj is, in order (a key written twice has two); nil when obj is not a
// well-formed object (NaN tolerated, as by Split) or has no such key. Keys
// are compared decoded, so "\u0075ser" is "user". Privacy rewrites values
// in place with it, keeping every other byte of the text.
func FieldSpans(obj []byte, key string) []Span {
	i, ok := object(obj)
	if !ok {
		return nil
	}
	var spans []Span
	eachMember(obj, i, func(k string, val Span) bool {
		if k == key {
			spans = append(spans, val)
		}
		return true
	})
	return spans
}

// object returns where the JSON object obj starts; ok is false when obj
// is not one well-formed object (NaN tolerated, as by Split).
func object(obj []byte) (start int, ok bool) {
	i := skipSpace(obj, 0)
	if i == len(obj) || obj[i] != '{' {
		return 0, false
	}
	end, err := scanValue(obj, i)
	return i, err == nil && skipSpace(obj, end) == len(obj)
}

// eachMember calls fn with the decoded key and the value's span of every
// member of the object at v[i], which the scanner has checked, until fn
// returns false.
func eachMember(v []byte, i int, fn func(key string, val Span) bool) {
	for j := skipSpace(v, i+1); v[j] != '}'; {
		keyEnd, _ := scanString(v, j)
		key := unquote(v[j:keyEnd])
		j = skipSpace(v, keyEnd)
		j = skipSpace(v, j+1) // past ':'
		valEnd, _ := scanValue(v, j)
		if !fn(key, Span{j, valEnd}) {
			return
		}
		j = skipSpace(v, valEnd)
		if v[j] == ',' {
			j = skipSpace(v, j+1)
		}
	}
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
