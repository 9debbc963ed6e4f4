package analytics

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Drawing geometry, in SVG user units.
const (
	svgScale  = 200.0 // layout radius
	nodeR     = 36.0
	svgMargin = 105.0
)

// SVG draws g's graph with the experiment's fixed layout: nodes where the
// reference placed them, each edge an arrow labelled with its weight, its
// width growing with the weight, self-loops as loops outside the node.
// Nodes never visited are pale. idPrefix keeps the arrowhead's id unique
// when several drawings share one page.
func SVG(g Graph, idPrefix string) []byte {
	e := Experiments[g.Key.Exp]
	m := g.Matrix
	half := svgScale + svgMargin
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="%s %s %s %s" width="420" height="440" role="img" aria-label="%s">`,
		f(-half), f(-half-24), f(2*half), f(2*half+24), esc(g.Key.User+" "+g.Key.Exp+" "+g.Key.Course))
	fmt.Fprintf(&b, `<defs><marker id="%sarrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse" style="overflow:visible"><path d="M0,0 L10,5 L0,10 z" fill="#2b5d8a"/></marker></defs>`, esc(idPrefix))
	fmt.Fprintf(&b, `<style>text{font-family:sans-serif}.w{font-size:19px;font-weight:bold;fill:#1b3a57;paint-order:stroke;stroke:#fff;stroke-width:4px}.n{font-size:14px;fill:#222}.t{font-size:19px;fill:#222}</style>`)
	fmt.Fprintf(&b, `<text class="t" x="%s" y="%s">%s · %s · %s: %s edges</text>`, f(-half+6), f(-half-6),
		esc(g.Key.User), esc(g.Key.Exp), esc(g.Key.Course), pyInt(m.Total()))
	pos := func(node string) (float64, float64) {
		p := e.Layout[node]
		return p.X * svgScale, -p.Y * svgScale // SVG's y grows downwards
	}
	max := 0.0
	for _, row := range m.W {
		for _, v := range row {
			max = math.Max(max, v)
		}
	}
	width := func(v float64) string { return f(1.2 + 4*v/max) }
	var labels bytes.Buffer // drawn last, above every edge
	for i, from := range m.Nodes {
		for j, to := range m.Nodes {
			v := m.W[i][j]
			if v == 0 {
				continue
			}
			x1, y1 := pos(from)
			if i == j {
				// A loop on the side facing away from the centre.
				ux, uy := x1/math.Hypot(x1, y1), y1/math.Hypot(x1, y1)
				at := func(deg, r float64) (float64, float64) {
					a := deg * math.Pi / 180
					return x1 + r*(ux*math.Cos(a)-uy*math.Sin(a)), y1 + r*(ux*math.Sin(a)+uy*math.Cos(a))
				}
				sx, sy := at(-35, nodeR)
				c1x, c1y := at(-45, nodeR*2.9)
				c2x, c2y := at(45, nodeR*2.9)
				ex, ey := at(35, nodeR+2)
				fmt.Fprintf(&b, `<path d="M%s,%s C%s,%s %s,%s %s,%s" fill="none" stroke="#2b5d8a" stroke-width="%s" marker-end="url(#%sarrow)"><title>%s → %s: %s</title></path>`,
					f(sx), f(sy), f(c1x), f(c1y), f(c2x), f(c2y), f(ex), f(ey), width(v), esc(idPrefix), esc(from), esc(to), pyInt(v))
				lx, ly := at(0, nodeR*2.55)
				fmt.Fprintf(&labels, `<text class="w" x="%s" y="%s" text-anchor="middle" dominant-baseline="middle">%s</text>`, f(lx), f(ly), pyInt(v))
				continue
			}
			x2, y2 := pos(to)
			d := math.Hypot(x2-x1, y2-y1)
			dx, dy := (x2-x1)/d, (y2-y1)/d
			// Bend to the left of the direction of travel, so a -> b and
			// b -> a are two separate arcs.
			nx, ny := dy, -dx
			cx, cy := (x1+x2)/2+nx*d*0.18, (y1+y2)/2+ny*d*0.18
			// Leave and reach the node's rim along the curve.
			sdx, sdy := unit(cx-x1, cy-y1)
			edx, edy := unit(x2-cx, y2-cy)
			sx, sy := x1+sdx*nodeR, y1+sdy*nodeR
			ex, ey := x2-edx*(nodeR+2), y2-edy*(nodeR+2)
			fmt.Fprintf(&b, `<path d="M%s,%s Q%s,%s %s,%s" fill="none" stroke="#2b5d8a" stroke-width="%s" marker-end="url(#%sarrow)"><title>%s → %s: %s</title></path>`,
				f(sx), f(sy), f(cx), f(cy), f(ex), f(ey), width(v), esc(idPrefix), esc(from), esc(to), pyInt(v))
			// The label sits on the curve, nearer its start, so the labels of
			// a -> b and b -> a do not meet.
			lt := 0.4
			lx := (1-lt)*(1-lt)*sx + 2*(1-lt)*lt*cx + lt*lt*ex
			ly := (1-lt)*(1-lt)*sy + 2*(1-lt)*lt*cy + lt*lt*ey
			fmt.Fprintf(&labels, `<text class="w" x="%s" y="%s" text-anchor="middle" dominant-baseline="middle">%s</text>`, f(lx), f(ly), pyInt(v))
		}
	}
	for _, n := range m.Nodes {
		x, y := pos(n)
		fill, stroke := "#dbe9f6", "#2b5d8a"
		if m.InWeight(n) == 0 && rowSum(m, n) == 0 {
			fill, stroke = "#f4f4f4", "#b0b0b0"
		}
		fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="%s" fill="%s" stroke="%s" stroke-width="2"><title>%s</title></circle>`, f(x), f(y), f(nodeR), fill, stroke, esc(n))
		// The name inside, a line per word part (voltage / step).
		parts := strings.Split(n, "_")
		for k, part := range parts {
			dy := (float64(k) - float64(len(parts)-1)/2) * 16
			fmt.Fprintf(&b, `<text class="n" x="%s" y="%s" text-anchor="middle" dominant-baseline="middle">%s</text>`, f(x), f(y+dy), esc(part))
		}
	}
	b.Write(labels.Bytes())
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func rowSum(m *Matrix, node string) float64 {
	i := indexOf(m.Nodes, node)
	var s float64
	for _, v := range m.W[i] {
		s += v
	}
	return s
}

func unit(x, y float64) (float64, float64) {
	d := math.Hypot(x, y)
	if d == 0 {
		return 0, -1
	}
	return x / d, y / d
}

func f(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// pyInt prints a count without a fraction (weights are whole numbers).
func pyInt(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func esc(s string) string { return html.EscapeString(s) }
