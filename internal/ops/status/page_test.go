package status

import (
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/publish/archive"
	"github.com/practable/lablog/internal/record/source"
	"github.com/practable/lablog/internal/testing/testkit"
)

var (
	levelClass = regexp.MustCompile(`class="[^"]*\bl-(ok|warning|failing)\b`)
	tableRow   = regexp.MustCompile(`(?s)<tr[ >].*?</tr>`)
	tableCell  = regexp.MustCompile(`(?s)<t[dh](?:\s[^>]*)?>(.*?)</t[dh]>`)
	tag        = regexp.MustCompile(`<[^>]*>`)
)

// contradictions lists what a rendered page says against itself: a text
// worse than the headline, in word or colour; a text that may be cut; a
// time in another convention than the one the page states; a column with
// nothing in it.
func contradictions(body string, s Snapshot) []string {
	var out []string
	rank := map[string]int{HealthOK: 0, HealthWarning: 1, HealthFailing: 2}
	for _, m := range levelClass.FindAllStringSubmatch(body, -1) {
		if rank[m[1]] > rank[s.Health] {
			out = append(out, "a "+m[1]+" text under a "+s.Health+" headline: "+m[0])
		}
	}
	text := tag.ReplaceAllString(body[strings.Index(body, "<body"):strings.Index(body, "<script")], " ")
	headline := strings.ToUpper(s.Health)
	for _, word := range []string{"FAILING", "WARNING"} {
		if word != headline && strings.Contains(text, word) {
			out = append(out, "the word "+word+" under a "+headline+" headline")
		}
	}
	for _, cut := range []string{"line-clamp", "text-overflow", "clamp"} {
		if strings.Contains(body, cut) {
			out = append(out, "texts may be cut ("+cut+")")
		}
	}
	if !strings.Contains(text, "all times UTC") {
		out = append(out, "the page does not state its time convention")
	}
	// Every time the snapshot holds, as the page would write it in local time.
	for _, t := range snapshotTimes(s) {
		if t.Local().Format("15:04:05") != t.UTC().Format("15:04:05") && strings.Contains(text, t.Local().Format("15:04:05")) {
			out = append(out, "a local time: "+t.Local().Format("15:04:05 MST"))
		}
	}
	rows := tableRow.FindAllString(body, -1)
	if len(rows) > 1 {
		var cols [][]string
		for _, r := range rows {
			for i, c := range tableCell.FindAllStringSubmatch(r, -1) {
				if i >= len(cols) {
					cols = append(cols, nil)
				}
				cols[i] = append(cols[i], strings.TrimSpace(html.UnescapeString(tag.ReplaceAllString(c[1], ""))))
			}
		}
		for _, col := range cols {
			empty := true
			for _, v := range col[1:] {
				empty = empty && (v == "" || v == "–")
			}
			if empty {
				out = append(out, "the column "+col[0]+" is empty")
			}
		}
	}
	return out
}

func snapshotTimes(s Snapshot) []time.Time {
	ts := []time.Time{s.Time}
	for _, st := range s.Streams {
		if st.Since != nil {
			ts = append(ts, *st.Since)
		}
	}
	for _, f := range s.Faults {
		ts = append(ts, f.First, f.Last)
	}
	if c := s.Archive.LastCompaction; c != nil {
		ts = append(ts, c.FinishedAt)
	}
	return ts
}

// The status page never contradicts itself: each scenario a reviewer found
// contradicting, rendered by the server, checked against the snapshot.
func TestPageNeverContradictsItself(t *testing.T) {
	// A technician's browser (and the Pi) in another zone than UTC.
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.FixedZone("IST", 5*3600+1800)

	for _, tc := range []struct {
		name string
		set  func(f *fakePipeline, o *Options)
		want []string // texts the page must hold
	}{
		{"upload retrying under a warning", func(f *fakePipeline, o *Options) {
			f.upload = &upload.Stats{State: upload.StateRetrying, Target: "s3://lab/x/", Endpoint: "https://s3.example.org",
				Failures: 4, LastError: "server unreachable", LastErrorAt: t0.Add(-time.Minute), NextAttemptAt: t0.Add(time.Minute),
				FilesWaiting: 2, BytesWaiting: 100}
		}, []string{`<dd id="upload-state" class="l-warning">retrying with backoff after 4 failed attempts</dd>`}},
		{"no drive required", func(f *fakePipeline, o *Options) {
			o.Require = archive.RequireNone
			f.sources = append(f.sources, source.Stats{Stream: "spin31", Since: t0.Add(-30 * time.Second), Connects: 1, LastError: "read: EOF"})
		}, []string{`<dd id="archive-drive" class="l-">no drive required (archive.require: none): writing to the folder `}},
		{"a fault's reason at length", func(f *fakePipeline, o *Options) {
			f.faults.Report(fault.BufferQuarantined, "/var/lib/lablog/buffer.db.corrupt-2026-11-26T14-00-00Z (cause: page 4711 reached twice)", 1)
		}, []string{`<li class="l-warning">buffer_quarantined: The buffer file was corrupt and was set aside (/var/lib/lablog/buffer.db.corrupt-2026-11-26T14-00-00Z (cause: page 4711 reached twice))</li>`}},
		{"times in one convention", func(f *fakePipeline, o *Options) {
			f.sources = append(f.sources, source.Stats{Stream: "spin31", Since: t0.Add(-30 * time.Second), Connects: 1, LastError: "read: EOF"})
			f.faults.Report(fault.RecordsSetAside, "", 3)
		}, []string{`reconnecting since 13:59:30 (30s ago)`, `<span class="when">last 2026-11-26 14:00:00 (0s ago)</span>`,
			`<span id="updated">14:00:00 UTC</span>`, "all times UTC"}},
		{"no relay host rules kept", func(f *fakePipeline, o *Options) {}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(t0)
			f := &fakePipeline{sources: []source.Stats{{Stream: "spin30", Connected: true, Since: t0.Add(-time.Hour), Connects: 1}},
				faults: fault.Open("", fault.Options{Now: clk.Now})}
			o := Options{ArchiveRoot: archiveRoot(t), Now: clk.Now, ClockSynced: func() bool { return true }, Logger: quiet()}
			tc.set(f, &o)
			m := New(f, o)
			m.sample(t0)
			m.checkArchive(t0)
			s := m.Snapshot()
			if s.Health != HealthWarning && tc.name != "no relay host rules kept" {
				t.Fatalf("health %q, want warning: %v", s.Health, s.Problems)
			}
			_, body, _ := get(t, m.Handler(), "/")
			for _, c := range contradictions(body, s) {
				t.Error(c)
			}
			for _, want := range tc.want {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if strings.Contains(body, "Relay host rule") {
				t.Error("a relay host rule column, though lablog keeps no rules here")
			}
		})
	}
}

// "Reconnects today" counts the UTC day, like every time on the page: local
// midnight (here 18:30 UTC) starts no new day.
func TestReconnectsTodayIsAUTCDay(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.FixedZone("IST", 5*3600+1800)
	evening := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	clk := testkit.NewClock(evening)
	f := &fakePipeline{sources: []source.Stats{{Stream: "spin30", Connected: true, Since: evening, Connects: 2, Reconnects: 1}}}
	m := New(f, Options{ArchiveRoot: archiveRoot(t), Now: clk.Now, ClockSynced: func() bool { return true }, Logger: quiet()})
	m.sample(evening)
	f.set(func(f *fakePipeline) { f.sources[0].Reconnects = 3 })
	clk.Advance(40 * time.Minute) // 00:10 in IST, still the 26th in UTC
	m.sample(clk.Now())
	if got := m.Snapshot().Streams[0].ReconnectsToday; got != 2 {
		t.Errorf("reconnects today = %d after local midnight, want 2 (the UTC day goes on)", got)
	}
}
