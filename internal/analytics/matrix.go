package analytics

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Matrix is a transition matrix: W[i][j] counts the steps from Nodes[i]
// to Nodes[j] (rows are "from", columns "to", as the reference writes them).
type Matrix struct {
	Nodes []string
	W     [][]float64
}

// NewMatrix is an all-zero matrix over nodes.
func NewMatrix(nodes []string) *Matrix {
	w := make([][]float64, len(nodes))
	for i := range w {
		w[i] = make([]float64, len(nodes))
	}
	return &Matrix{Nodes: append([]string(nil), nodes...), W: w}
}

// Total is the sum of all weights.
func (m *Matrix) Total() float64 {
	var s float64
	for _, row := range m.W {
		for _, v := range row {
			s += v
		}
	}
	return s
}

// Weight is the weight of the edge from -> to, 0 when either node is absent.
func (m *Matrix) Weight(from, to string) float64 {
	i, j := indexOf(m.Nodes, from), indexOf(m.Nodes, to)
	if i < 0 || j < 0 {
		return 0
	}
	return m.W[i][j]
}

// InWeight is the sum of the weights of the edges into node (the
// reference's "effective mass" of a node: its column sum).
func (m *Matrix) InWeight(node string) float64 {
	j := indexOf(m.Nodes, node)
	if j < 0 {
		return 0
	}
	var s float64
	for i := range m.W {
		s += m.W[i][j]
	}
	return s
}

// Over returns m laid over nodes: weights of nodes m lacks are 0; weights of
// nodes missing from nodes are dropped, and dropped says how much weight
// that was.
func (m *Matrix) Over(nodes []string) (out *Matrix, dropped float64) {
	out = NewMatrix(nodes)
	for i, from := range m.Nodes {
		for j, to := range m.Nodes {
			a, b := indexOf(nodes, from), indexOf(nodes, to)
			if a < 0 || b < 0 {
				dropped += m.W[i][j]
				continue
			}
			out.W[a][b] += m.W[i][j]
		}
	}
	return out, dropped
}

func indexOf(nodes []string, node string) int {
	for i, n := range nodes {
		if n == node {
			return i
		}
	}
	return -1
}

// WriteCSV writes m as pandas' DataFrame.to_csv wrote the reference's
// files: a header ",n1,n2,...", one row per node "n,v1,v2,...", values as
// Python floats print ("1.0"), "\n" line ends, a final newline.
func (m *Matrix) WriteCSV(w io.Writer) error {
	var b bytes.Buffer
	for _, n := range m.Nodes {
		b.WriteByte(',')
		b.WriteString(n)
	}
	b.WriteByte('\n')
	for i, n := range m.Nodes {
		b.WriteString(n)
		for _, v := range m.W[i] {
			b.WriteByte(',')
			b.WriteString(pyFloat(v))
		}
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// pyFloat formats v as Python's repr of a float does for the values a
// count can take: integers below 1e16 as "12.0", others in shortest form.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e16:
		return strconv.FormatFloat(v, 'f', 0, 64) + ".0"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ReadCSV reads a matrix written as WriteCSV writes it; integers ("795")
// and floats ("795.0") are both accepted, as pandas accepts them. The
// header's first cell is ignored and the row names must repeat the
// header's node names in order.
func ReadCSV(r io.Reader) (*Matrix, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read matrix: %w", err)
	}
	if len(recs) == 0 || len(recs[0]) < 2 {
		return nil, fmt.Errorf("read matrix: no header of node names")
	}
	m := NewMatrix(recs[0][1:])
	if len(recs)-1 != len(m.Nodes) {
		return nil, fmt.Errorf("read matrix: %d nodes in the header but %d rows", len(m.Nodes), len(recs)-1)
	}
	for i, rec := range recs[1:] {
		if len(rec) != len(m.Nodes)+1 {
			return nil, fmt.Errorf("read matrix: row %d has %d cells, want %d", i+1, len(rec), len(m.Nodes)+1)
		}
		if rec[0] != m.Nodes[i] {
			return nil, fmt.Errorf("read matrix: row %d is %q, want %q as in the header", i+1, rec[0], m.Nodes[i])
		}
		for j, cell := range rec[1:] {
			v, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
			if err != nil {
				return nil, fmt.Errorf("read matrix: row %s, column %s: %w", rec[0], m.Nodes[j], err)
			}
			m.W[i][j] = v
		}
	}
	return m, nil
}
