package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Row is one figure of the table: a value per run.
type Row struct {
	Scenario, Figure, Unit string
	Target                 string // from the performance issue, "" when none
	Values                 []float64
	Approx                 bool // estimated (histogram buckets), printed with "~"
	Derived                bool // computed from other rows' medians: no spread
}

// Summary is the row's median with its spread.
func (r *Row) Summary() Summary { return Summarize(r.Values) }

// Report is the bench's one table, in the order figures were first added.
type Report struct {
	Header []string
	Rows   []*Row
	Notes  []string
}

// Find is the row of scenario and figure, or nil.
func (r *Report) Find(scenario, figure string) *Row {
	for _, row := range r.Rows {
		if row.Scenario == scenario && row.Figure == figure {
			return row
		}
	}
	return nil
}

// add appends one run's value to a row, making the row on first use.
func (r *Report) add(scenario, figure, unit, target string, v float64) *Row {
	row := r.Find(scenario, figure)
	if row == nil {
		row = &Row{Scenario: scenario, Figure: figure, Unit: unit, Target: target}
		r.Rows = append(r.Rows, row)
	}
	row.Values = append(row.Values, v)
	return row
}

// note adds a line under the table, once however many runs say it.
func (r *Report) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !slices.Contains(r.Notes, n) {
		r.Notes = append(r.Notes, n)
	}
}

// Write prints the report as a Markdown table, ready for docs/performance.md.
func (r *Report) Write(w io.Writer) error {
	var b strings.Builder
	for _, h := range r.Header {
		fmt.Fprintln(&b, h)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| scenario | figure | median | min | max | target |")
	fmt.Fprintln(&b, "|---|---|---:|---:|---:|---|")
	for _, row := range r.Rows {
		s := row.Summary()
		mark := ""
		if row.Approx {
			mark = "~"
		}
		unit := ""
		if row.Unit != "" {
			unit = " " + row.Unit
		}
		lo, hi := mark+formatNum(s.Min), mark+formatNum(s.Max)
		if row.Derived || s.N < 2 {
			lo, hi = "", ""
		}
		fmt.Fprintf(&b, "| %s | %s | %s%s | %s | %s | %s |\n", row.Scenario, row.Figure+unit, mark, formatNum(s.Median), lo, hi, row.Target)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(&b)
		for _, n := range r.Notes {
			fmt.Fprintln(&b, "- "+n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatNum keeps three significant figures, without exponents.
func formatNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}
