package analytics

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"path/filepath"
	"slices"
	"strconv"
)

// reportTemplate is the whole report: one file, styles inline, no scripts,
// nothing fetched.
var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"num": num}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Learning analytics</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:2px solid #2b5d8a;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;background:#fff}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#e8eef4}
td:first-child,th:first-child{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:1em}
article{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.6em;width:360px}
article h3{margin:.1em 0 .4em;font-size:1em;word-break:break-all}
article svg{display:block;width:100%;height:auto}
dl{display:grid;grid-template-columns:auto 1fr;gap:.1em .8em;margin:.4em 0}dt{color:#555}dd{margin:0}
.muted{color:#777}
</style></head><body>
<h1>Learning analytics</h1>
<p class="muted">{{len .Graphs}} student graphs from {{.Stats.Commands}} commands in {{.Stats.Messages}} messages. Weights on the edges count the steps from one hardware mode to the next.</p>
<table><tr><th>where lablog differs from the reference</th><th>count</th></tr>
<tr><td>glued frames split (the reference lost every message in them)</td><td>{{.Stats.GluedFrames}}</td></tr>
<tr><td>commands of another experiment skipped (the reference lost the graph)</td><td>{{.Stats.ForeignCommands}}</td></tr>
<tr><td>graphs the reference would not have written</td><td>{{.Stats.GraphsLostByRef}}</td></tr>
<tr><td>one-hardware graphs sorted by t (the reference kept arrival order)</td><td>{{.Stats.UnsortedSingleHW}}</td></tr>
<tr><td>commands without user, exp or course (not counted)</td><td>{{.Stats.NoKey}}</td></tr>
</table>
{{range .Groups}}
<h2>{{.Exp}} · {{.Course}} <span class="muted">({{len .Items}} users)</span></h2>
<table><tr><th>user</th><th>commands</th><th>edges</th><th>closest task</th><th>task distance</th><th>exploration</th><th>total edges %</th><th>enjoyment</th></tr>
{{range .Items}}<tr><td><a href="#{{.Anchor}}">{{.Ind.User}}</a></td><td>{{.Ind.Commands}}</td><td>{{num .Ind.Edges}}</td><td>{{.Closest}}</td><td>{{num .ClosestDistance}}</td><td>{{num .Ind.Exploration}}</td><td>{{num .Ind.TotalEdges}}</td><td>{{.Ind.Enjoyment}}</td></tr>
{{end}}</table>
<div class="cards">
{{range .Items}}<article id="{{.Anchor}}"><h3>{{.Ind.User}}</h3>{{.SVG}}
<dl><dt>commands</dt><dd>{{.Ind.Commands}}</dd><dt>exploration</dt><dd>{{num .Ind.Exploration}}</dd><dt>total edges</dt><dd>{{num .Ind.TotalEdges}} %</dd><dt>enjoyment</dt><dd>{{.Ind.Enjoyment}}</dd>
{{with .Ind.Centroids.student}}<dt>centroid</dt><dd>({{num (index . 0)}}, {{num (index . 1)}})</dd>{{end}}</dl>
{{if .Tasks}}<table><tr><th>comparison graph</th><th>task distance</th><th>edit distance</th></tr>
{{range .Tasks}}<tr><td>{{.Name}}</td><td>{{num .Distance}}</td><td>{{num .GED}}</td></tr>
{{end}}</table>{{end}}
</article>
{{end}}</div>
{{end}}
</body></html>
`))

// num prints an indicator: 4 significant digits, "–" for NaN (the JSON's null).
func num(n Number) string {
	v := float64(n)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

type reportTask struct {
	Name          string
	Distance, GED Number
}

type reportItem struct {
	Ind             Indicators
	Anchor          string
	SVG             template.HTML
	Closest         string
	ClosestDistance Number
	Tasks           []reportTask
}

type reportGroup struct {
	Exp, Course string
	Items       []reportItem
}

// HTML renders the report: per exp and course, a table of the users and
// each user's graph with its indicators.
func HTML(r Report) ([]byte, error) {
	var groups []reportGroup
	for i, g := range r.Graphs {
		ind := r.Indicators[i]
		if n := len(groups); n == 0 || groups[n-1].Exp != g.Key.Exp || groups[n-1].Course != g.Key.Course {
			groups = append(groups, reportGroup{Exp: g.Key.Exp, Course: g.Key.Course})
		}
		anchor := fmt.Sprintf("g%d", i)
		item := reportItem{Ind: ind, Anchor: anchor, Closest: "–", ClosestDistance: Number(math.NaN()),
			// The SVG is built by this package with every text escaped.
			SVG: template.HTML(SVG(g, anchor))}
		for name, d := range ind.TaskIdentification {
			item.Tasks = append(item.Tasks, reportTask{name, d, ind.GraphEditDistance[name]})
		}
		slices.SortFunc(item.Tasks, func(a, b reportTask) int {
			switch {
			case a.Name < b.Name:
				return -1
			case a.Name > b.Name:
				return 1
			}
			return 0
		})
		for _, t := range item.Tasks {
			if d := float64(t.Distance); !math.IsNaN(d) && (math.IsNaN(float64(item.ClosestDistance)) || d < float64(item.ClosestDistance)) {
				item.Closest, item.ClosestDistance = t.Name, t.Distance
			}
		}
		last := &groups[len(groups)-1]
		last.Items = append(last.Items, item)
	}
	var b bytes.Buffer
	err := reportTemplate.Execute(&b, struct {
		Report
		Groups []reportGroup
	}{r, groups})
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.Bytes(), nil
}

// WritePictures writes graphs/{user}-{exp}-{course}.svg for every graph and
// report.html into dir.
func WritePictures(dir string, r Report) error {
	graphs := filepath.Join(dir, "graphs")
	if err := mkdir(graphs); err != nil {
		return err
	}
	for _, g := range r.Graphs {
		if err := writeFile(filepath.Join(graphs, FileName(g.Key, ".svg")), SVG(g, "")); err != nil {
			return err
		}
	}
	page, err := HTML(r)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "report.html"), page)
}
