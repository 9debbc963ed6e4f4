package frame

import (
	"bytes"
	"net/url"
)

// StatementData is the envelope a Statement record holds: query (the
// call's kept parameters, URL-encoded in sorted key order, so the same
// call always gives the same bytes), a newline, then body exactly as sent.
// A newline never occurs in an encoded query, so the first one ends it.
func StatementData(query url.Values, body []byte) []byte {
	q := query.Encode()
	b := make([]byte, 0, len(q)+1+len(body))
	b = append(b, q...)
	b = append(b, '\n')
	return append(b, body...)
}

// SplitStatement reverses StatementData. Data without a newline (never
// written by lablog) is all body.
func SplitStatement(data []byte) (query string, body []byte) {
	q, b, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return "", data
	}
	return string(q), b
}
