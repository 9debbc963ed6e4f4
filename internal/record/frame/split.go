package frame

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Message is one JSON value of a frame. Raw is a slice of the frame; the Raw of
// all messages of a frame, concatenated, give back the frame byte for byte
// (whitespace between glued values stays with the value before it).
//
// The typed fields are filled from a top-level object when present and of the
// expected type; a missing or odd field is simply nil, the raw text keeps it.
type Message struct {
	Raw      []byte
	User     *string
	T        *int64 // milliseconds since the Unix epoch, as the lab UI sent it
	Exp      *string
	Hardware *string
	Course   *string
	Type     *string
	Payload  []byte // the payload value's JSON text, as sent (may hold NaN)
	Err      string // why the message could not be parsed; empty when it was
}

// Split cuts a text frame into its messages. The relay glues queued messages
// into one frame ({..}{..}), and analytics responses may hold NaN or Infinity,
// which encoding/json rejects, so the boundaries are found by a tolerant,
// non-recursive scanner. Split never fails: what cannot be parsed becomes one
// message carrying the rest of the frame and the reason.
func Split(b []byte) []Message {
	if len(b) == 0 {
		return []Message{{Raw: b, Err: "empty frame"}}
	}
	if !utf8.Valid(b) {
		return []Message{{Raw: b, Err: "invalid UTF-8"}}
	}
	var msgs []Message
	start := 0 // start of the current message's raw span
	for {
		i := skipSpace(b, start)
		if i == len(b) {
			if len(msgs) == 0 {
				return []Message{{Raw: b, Err: "no JSON value"}}
			}
			return msgs
		}
		var msg Message
		end, err := scanMessage(b, i, &msg)
		if err != nil {
			return append(msgs, Message{Raw: b[start:], Err: err.Error()})
		}
		next := skipSpace(b, end)
		msg.Raw = b[start:next]
		msgs = append(msgs, msg)
		start = next
	}
}

// scanMessage reads the JSON value at b[i] into msg and returns its end.
// An object is checked and read in one pass, member by member (archiving
// spends a fifth of its time here); anything the pass does not expect,
// invalid JSON included, is left to scanTwoPass, which says what is wrong.
func scanMessage(b []byte, i int, msg *Message) (int, error) {
	if b[i] == '{' {
		if end, ok := scanObject(b, i, msg); ok {
			return end, nil
		}
		*msg = Message{}
	}
	return scanTwoPass(b, i, msg)
}

// scanObject checks the object at b[i] as scanValue does and sets msg's
// fields from its members; ok is false when it is not valid.
func scanObject(b []byte, i int, msg *Message) (end int, ok bool) {
	j := skipSpace(b, i+1)
	if j < len(b) && b[j] == '}' {
		return j + 1, true
	}
	for {
		if j >= len(b) || b[j] != '"' {
			return 0, false
		}
		keyEnd, err := scanString(b, j)
		if err != nil {
			return 0, false
		}
		key := b[j:keyEnd]
		if j = skipSpace(b, keyEnd); j >= len(b) || b[j] != ':' {
			return 0, false
		}
		j = skipSpace(b, j+1)
		valEnd, err := scanValue(b, j)
		if err != nil {
			return 0, false
		}
		if bytes.IndexByte(key, '\\') < 0 {
			setField(msg, string(key[1:len(key)-1]), b[j:valEnd]) // no allocation: a switch on string(bytes)
		} else {
			setField(msg, unquote(key), b[j:valEnd])
		}
		if j = skipSpace(b, valEnd); j >= len(b) {
			return 0, false
		}
		switch b[j] {
		case ',':
			j = skipSpace(b, j+1)
		case '}':
			return j + 1, true
		default:
			return 0, false
		}
	}
}

// scanTwoPass finds the end of the value at b[i] (or why it is not
// valid), then reads an object's members into msg.
func scanTwoPass(b []byte, i int, msg *Message) (int, error) {
	end, err := scanValue(b, i)
	if err != nil {
		return end, err
	}
	parseFields(msg, b[i:end])
	return end, nil
}

// parseFields fills the typed fields of msg from the JSON value v, which the
// scanner has already checked.
func parseFields(msg *Message, v []byte) {
	if v[0] != '{' {
		msg.Err = "not a JSON object"
		return
	}
	eachMember(v, 0, func(key string, s Span) bool {
		setField(msg, key, v[s.Start:s.End])
		return true
	})
}

// setField sets the field of msg that the member key holds, if any.
func setField(msg *Message, key string, val []byte) {
	switch key {
	case "user":
		msg.User = stringValue(val)
	case "exp":
		msg.Exp = stringValue(val)
	case "hardware":
		msg.Hardware = stringValue(val)
	case "course":
		msg.Course = stringValue(val)
	case "type":
		msg.Type = stringValue(val)
	case "t":
		msg.T = millisValue(val)
	case "payload":
		msg.Payload = val
	}
}

// unquote decodes a JSON string token as encoding/json does, "" when it is
// not one. Most strings have no escapes, control bytes or invalid UTF-8:
// those are copied as they are, which makes archiving several times faster.
func unquote(s []byte) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		body := s[1 : len(s)-1]
		plain := utf8.Valid(body)
		for _, c := range body {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			return string(body)
		}
	}
	var out string
	if err := json.Unmarshal(s, &out); err != nil {
		return ""
	}
	return out
}

func stringValue(v []byte) *string {
	if v[0] != '"' {
		return nil
	}
	s := unquote(v)
	return &s
}

// millisValue reads a numeric timestamp; fractions are truncated, anything
// else (strings, NaN, out of range) gives nil.
func millisValue(v []byte) *int64 {
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return &n
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1<<63 {
		return nil
	}
	n := int64(f)
	return &n
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// syntaxError describes where a JSON value went wrong.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

var errUnexpectedEnd = errors.New("unexpected end")

func fail(off int, format string, args ...any) error {
	return &syntaxError{off: off, msg: fmt.Sprintf(format, args...)}
}

// scanValue returns the end of the JSON value starting at b[i]. It keeps its
// own stack of open containers, so deep nesting cannot overflow the goroutine
// stack. NaN, Infinity and -Infinity are accepted as numbers.
func scanValue(b []byte, i int) (int, error) {
	var stack []byte // open containers: '{' or '['
	for {
		// Expecting a value at b[i].
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, fail(i, "%v, expected a value", errUnexpectedEnd)
		}
		switch c := b[i]; {
		case c == '{':
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			stack = append(stack, '{')
			var err error
			if i, err = scanKey(b, i); err != nil {
				return i, err
			}
			continue
		case c == '[':
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			stack = append(stack, '[')
			continue
		case c == '"':
			end, err := scanString(b, i)
			if err != nil {
				return end, err
			}
			i = end
		default:
			end, err := scanScalar(b, i)
			if err != nil {
				return end, err
			}
			i = end
		}
		// A value ended at i: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, fail(i, "%v inside %s", errUnexpectedEnd, containerName(stack[len(stack)-1]))
			}
			top := stack[len(stack)-1]
			switch {
			case b[i] == ',':
				i++
				if top == '{' {
					var err error
					if i, err = scanKey(b, i); err != nil {
						return i, err
					}
				}
			case top == '{' && b[i] == '}', top == '[' && b[i] == ']':
				stack = stack[:len(stack)-1]
				i++
				continue
			default:
				return i, fail(i, "unexpected %q inside %s", b[i], containerName(top))
			}
			break
		}
	}
}

func containerName(c byte) string {
	if c == '{' {
		return "object"
	}
	return "array"
}

// scanKey reads `"key" :` and returns the index after the colon.
func scanKey(b []byte, i int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '"' {
		return i, fail(i, "expected a string key")
	}
	end, err := scanString(b, i)
	if err != nil {
		return end, err
	}
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return i, fail(i, "expected ':' after key")
	}
	return i + 1, nil
}

// scanString returns the end of the string literal starting at b[i] == '"'.
func scanString(b []byte, i int) (int, error) {
	start := i
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
			if i >= len(b) {
				return i, fail(i, "%v in string", errUnexpectedEnd)
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, fail(i, "bad \\u escape")
				}
				i += 4
			default:
				return i, fail(i, "bad escape %q", b[i])
			}
		case c < 0x20:
			return i, fail(i, "control character in string")
		}
	}
	return i, fail(start, "%v in string", errUnexpectedEnd)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

var literals = []string{"true", "false", "null", "NaN", "Infinity", "-Infinity"}

// scanScalar reads a literal or a number.
func scanScalar(b []byte, i int) (int, error) {
	for _, lit := range literals {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit), nil
		}
	}
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		if i < len(b) {
			return i, fail(i, "unexpected %q", b[i])
		}
		return i, fail(i, "%v in number", errUnexpectedEnd)
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return i, fail(start, "bad number")
		}
		i = skipDigits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, fail(start, "bad number")
		}
		i = skipDigits(b, i)
	}
	return i, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// Field returns the JSON text of the top-level key of the object obj, nil
// when obj is not a well-formed object (NaN tolerated, as by Split) or has
// no such key. Analytics reads payload.log with it, since a payload may hold
// NaN that encoding/json rejects.
func Field(obj []byte, key string) []byte {
	i, ok := object(obj)
	if !ok {
		return nil
	}
	var val []byte
	eachMember(obj, i, func(k string, s Span) bool {
		if k == key {
			val = obj[s.Start:s.End]
		}
		return val == nil
	})
	return val
}

// StringField is Field's value when it is a JSON string, nil otherwise.
func StringField(obj []byte, key string) *string {
	v := Field(obj, key)
	if len(v) == 0 {
		return nil
	}
	return stringValue(v)
}
