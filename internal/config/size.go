package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In YAML it is a plain integer or an integer
// with a unit: B, KiB, MiB or GiB (binary units only, so that "MB" cannot
// be misread).
type Size int64

// Size units.
const (
	B   Size = 1
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

var units = []struct {
	name string
	size Size
}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"B", B}}

// ParseSize parses "1GiB", "512KiB", "100B" or "1048576".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	digits := strings.TrimRight(s, "BKGMib ")
	unit := strings.TrimSpace(s[len(digits):])
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || strings.ContainsAny(digits, "+-") {
		return 0, fmt.Errorf("invalid size %q: want an integer with an optional unit B, KiB, MiB or GiB, such as 512KiB", s)
	}
	mult := B
	if unit != "" {
		mult = 0
		for _, u := range units {
			if unit == u.name {
				mult = u.size
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("invalid size unit %q in %q: want B, KiB, MiB or GiB", unit, s)
		}
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(n) * mult, nil
}

// String gives the size in the largest unit that divides it exactly.
func (s Size) String() string {
	for _, u := range units {
		if s != 0 && s%u.size == 0 {
			return fmt.Sprintf("%d%s", s/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}

// UnmarshalYAML reads a Size. Errors are returned as *yaml.TypeError with
// the line, so the decoder keeps going and reports every problem.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a size such as 512KiB, 1MiB or 1GiB", n.Line)}}
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*s = v
	return nil
}
