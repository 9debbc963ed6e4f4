package analytics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/practable/lablog/internal/platform/atomicfile"
)

// FileName is the reference's name for k's matrix file,
// "{user}-{exp}-{course}-adjacency.csv", made safe: user ids come from the
// network, so any byte but ASCII letters, digits, '.', '_' and '-' (and a
// leading '.') is written as %XX. Ordinary ids (UUIDs, names) are unchanged.
func FileName(k Key, suffix string) string {
	return safeName(k.User) + "-" + safeName(k.Exp) + "-" + safeName(k.Course) + suffix
}

func safeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0
		if ok {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Report is everything one run produced.
type Report struct {
	Graphs     []Graph
	Indicators []Indicators
	Stats      Stats
}

// Analyse makes the matrices of b and their indicators.
func Analyse(b *Builder, comps Comparisons) Report {
	graphs := b.Matrices()
	r := Report{Graphs: graphs, Indicators: make([]Indicators, len(graphs))}
	for i, g := range graphs {
		r.Indicators[i] = comps.Compute(g)
	}
	r.Stats = b.Stats
	return r
}

// WriteMatrices writes each graph's matrix to dir as the reference named
// and formatted it.
func WriteMatrices(dir string, graphs []Graph) error {
	if err := mkdir(dir); err != nil {
		return err
	}
	for _, g := range graphs {
		var buf bytes.Buffer
		if err := g.Matrix.WriteCSV(&buf); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, FileName(g.Key, "-adjacency.csv")), buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// WriteIndicators writes indicators.json: {"stats": ..., "graphs": [...]}.
func WriteIndicators(dir string, r Report) error {
	data, err := json.MarshalIndent(struct {
		Stats  Stats        `json:"stats"`
		Graphs []Indicators `json:"graphs"`
	}{r.Stats, r.Indicators}, "", "  ")
	if err != nil {
		return fmt.Errorf("indicators: %w", err)
	}
	return writeFile(filepath.Join(dir, "indicators.json"), append(data, '\n'))
}

// writeFile replaces path atomically and durably: a reader (or rsync) never
// sees half a file.
func writeFile(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o644)
}

// WriteAll writes the matrices, indicators.json and the pictures to dir.
func WriteAll(dir string, r Report) error {
	if err := WriteMatrices(dir, r.Graphs); err != nil {
		return err
	}
	if err := WriteIndicators(dir, r); err != nil {
		return err
	}
	return WritePictures(dir, r)
}

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("analytics output: %w", err)
	}
	return nil
}
