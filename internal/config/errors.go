package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a config file.
type FieldError struct {
	File  string // file name given to Parse or Load; empty for Validate
	Line  int    // 1-based line in File, 0 when not known
	Field string // key path such as "streams[1].url"; empty for whole-file problems
	Msg   string
}

// Error formats the problem as file:line: field: message, leaving out the
// parts that are not known.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config, in the order found.
type Errors []FieldError

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// about reports whether some error concerns field, a key within it or the
// key holding it.
func (es Errors) about(field string) bool {
	within := func(inner, outer string) bool {
		return inner == outer || strings.HasPrefix(inner, outer+".") || strings.HasPrefix(inner, outer+"[")
	}
	for _, e := range es {
		if e.Field != "" && (within(field, e.Field) || within(e.Field, field)) {
			return true
		}
	}
	return false
}

func (es Errors) in(file string) Errors {
	for i := range es {
		es[i].File = file
	}
	return es
}

// keyIndex records where each key of the file is, so that problems found
// after decoding can point at a line.
type keyIndex []keyPos

type keyPos struct {
	path string // e.g. streams[1].url; sequence items are streams[1]
	key  string // last path element ("" for sequence items)
	line int    // line of the key (or of the sequence item)
	val  *yaml.Node
}

func indexKeys(root *yaml.Node) keyIndex {
	var idx keyIndex
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx = append(idx, keyPos{p, k.Value, k.Line, v})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx = append(idx, keyPos{p, "", v.Line, v})
				walk(v, p)
			}
		}
	}
	walk(root, "")
	return idx
}

// line returns the line of path, or of its nearest ancestor in the file
// (a problem with a key left out points at its section).
func (idx keyIndex) line(path string) int {
	for path != "" {
		for _, k := range idx {
			if k.path == path {
				return k.line
			}
		}
		path = path[:max(strings.LastIndexAny(path, ".["), 0)]
	}
	return 0
}

var (
	lineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type`)
	unmarshRE  = regexp.MustCompile(`^cannot unmarshal (!!\w+)(.*) into (.+)$`)
	friendlyTo = map[string]string{
		"time.Duration":       "a duration such as 90s, 2m or 1h",
		"int":                 "an integer",
		"bool":                "true or false",
		"string":              "a string",
		"config.Require":      "one of marker, mountpoint, none",
		"[]config.StreamSpec": "a list of streams",
		"config.StreamSpec":   "a mapping with name and one of url, relay_host or relay",
	}
)

// decodeErrors turns yaml's messages ("line 3: field bogus not found in type
// config.Buffer") into FieldErrors that keep the line and name the key.
func decodeErrors(err error, idx keyIndex) Errors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs Errors
	for _, m := range msgs {
		e := FieldError{Msg: strings.TrimPrefix(m, "yaml: ")}
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Msg = sub[2]
		}
		if sub := unknownRE.FindStringSubmatch(e.Msg); sub != nil {
			for _, k := range idx {
				if k.line == e.Line && k.key == sub[1] {
					e.Field = k.path
					e.Msg = "unknown key"
					if known := knownKeys(k.path); known != nil {
						e.Msg += " (want one of: " + strings.Join(known, ", ") + ")"
					}
					break
				}
			}
		} else if sub := unmarshRE.FindStringSubmatch(e.Msg); sub != nil {
			e.Field = idx.valueAt(e.Line, sub[1])
			want, ok := friendlyTo[sub[3]]
			if !ok && strings.HasPrefix(sub[3], "config.") {
				want, ok = "a mapping of keys", true // a section
			}
			if ok {
				got := describe(sub[1], sub[2])
				if sub[3] == "time.Duration" && (sub[1] == "!!int" || sub[1] == "!!float") {
					got += " (a duration needs a unit)"
				}
				e.Msg = "got " + got + ", want " + want
			}
		} else if e.Line > 0 {
			e.Field = idx.valueAt(e.Line, "")
		}
		errs = append(errs, e)
	}
	return errs
}

// describe says what YAML read, in words: "the number 120", "the text
// \"many\"", "a mapping".
func describe(tag, value string) string {
	v := strings.Trim(strings.TrimSpace(value), "`")
	switch tag {
	case "!!int", "!!float":
		return "the number " + v
	case "!!str":
		return strconv.Quote(v)
	case "!!bool":
		return v
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "nothing"
	}
	return tag + value
}

// syntaxLine moves a YAML syntax error to the line that causes it: the
// parser blames the line where it gave up, often the one before a tab or a
// key indented out of line.
func syntaxLine(src []byte, e FieldError) FieldError {
	lines := strings.Split(string(src), "\n")
	indentOf := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	blank := func(l string) bool { t := strings.TrimSpace(l); return t == "" || strings.HasPrefix(t, "#") }
	switch {
	case strings.Contains(e.Msg, "tab character"):
		for i, l := range lines {
			if strings.ContainsRune(l[:len(l)-len(strings.TrimLeft(l, " \t"))], '\t') {
				e.Line = i + 1
				e.Msg = "a tab in the indentation: YAML indents with spaces only"
				return e
			}
		}
	case e.Msg == "did not find expected key" || strings.HasPrefix(e.Msg, "did not find expected '-'"):
		seen := map[int]bool{}
		prev := 0
		for i, l := range lines {
			if blank(l) {
				continue
			}
			in := indentOf(l)
			if i+1 > e.Line && !seen[in] && in < prev {
				e.Line = i + 1
				e.Msg = "this line's indentation does not line up with the lines above"
				return e
			}
			seen[in] = true
			prev = in
		}
	}
	return e
}

// valueAt finds the key whose value starts on line and has the YAML kind of
// tag (!!map, !!seq or a scalar tag), preferring the deepest. With tag ""
// any kind matches but sequence items do not: a message without a tag comes
// from a key's own unmarshaler (Size).
func (idx keyIndex) valueAt(line int, tag string) string {
	want := yaml.ScalarNode
	switch tag {
	case "!!map":
		want = yaml.MappingNode
	case "!!seq":
		want = yaml.SequenceNode
	}
	found := ""
	for _, k := range idx {
		if k.val.Line == line && (tag == "" && k.key != "" || tag != "" && k.val.Kind == want) {
			found = k.path
		}
	}
	return found
}

// knownKeys lists the keys allowed next to the last element of path, read
// from the yaml tags so the list cannot drift from the types.
func knownKeys(path string) []string {
	t := reflect.TypeOf(Config{})
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		if i := strings.IndexByte(p, '['); i >= 0 {
			p = p[:i]
		}
		f, ok := fieldByTag(t, p)
		if !ok {
			return nil
		}
		t = f.Type
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
	}
	var keys []string
	for i := range t.NumField() {
		keys = append(keys, t.Field(i).Tag.Get("yaml"))
	}
	return keys
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("yaml") == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}
