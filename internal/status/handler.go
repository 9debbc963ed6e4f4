package status

import (
	"github.com/practable/lablog/internal/analytics"

	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/practable/lablog/internal/httpserve"
	"github.com/practable/lablog/internal/relay"
)

//go:embed page.html
var pageSource string

var page = template.Must(template.New("page").Parse(pageSource))

// Handler serves the status endpoints:
//
//	GET /            the status page (HTML, refreshes itself)
//	GET /api/status  the Snapshot as JSON
//	GET /healthz     200 "recording", or 503 "not recording"; then one reason per line
//	GET /metrics     Prometheus text format
//	POST /api/faults/ack  acknowledge the faults; answers those still active
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", m.servePage)
	mux.HandleFunc("GET /api/status", m.serveJSON)
	// Only POST (other methods get 405), and never from another site's page.
	mux.Handle("POST /api/faults/ack", http.NewCrossOriginProtection().Handler(http.HandlerFunc(m.serveFaultAck)))
	mux.HandleFunc("GET /healthz", m.serveHealthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// Healthz is GET /healthz alone, for other listeners to serve too.
func (m *Monitor) Healthz() http.Handler { return http.HandlerFunc(m.serveHealthz) }

func (m *Monitor) servePage(w http.ResponseWriter, r *http.Request) {
	// Render to a buffer first, so a template error is a clean 500 rather
	// than half a page.
	v := m.view(m.Snapshot())
	v.Nonce = newNonce()
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		m.opts.Logger.Error("status page", "err", err)
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page's one script and one style run by their nonce; nothing
	// else may run, load, or frame it.
	w.Header().Set("Content-Security-Policy", httpserve.PageCSP(v.Nonce))
	_, _ = w.Write(buf.Bytes())
}

// newNonce is a fresh CSP nonce: 128 random bits.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b)
}

func (m *Monitor) serveJSON(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(m.Snapshot(), "", "  ")
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

func (m *Monitor) serveHealthz(w http.ResponseWriter, r *http.Request) {
	s := m.Snapshot()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The reasons: failing ones (why 503) as they are, then warnings
	// (active faults among them) marked so.
	var b strings.Builder
	for _, p := range s.Problems {
		if p.Level == HealthFailing {
			b.WriteString(p.Message + "\n")
		} else {
			b.WriteString("warning: " + p.Message + "\n")
		}
	}
	if s.Recording {
		_, _ = w.Write([]byte("recording\n" + b.String()))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte("not recording\n" + b.String()))
}

// pageView is the Snapshot in words, for the template. The page's script
// renders the same words from /api/status; keep the two in step.
type pageView struct {
	Health, Word, Version, Uptime, Updated string
	ClockSynced, ClockExpected             bool
	Problems                               []Problem
	Faults                                 []faultView
	Streams                                []streamView
	Buffer                                 struct{ Size, Waiting, Oldest, Writer, Dropped string }
	Analytics                              string // the store's counts, "" without one
	Archive                                struct {
		Available                                 bool
		Drive, Free, Today, Compaction, LastError string
	}
	Upload        *uploadView // nil when upload is off
	RefreshMillis int64
	Nonce         string // of this answer's Content-Security-Policy
}

type faultView struct {
	Kind, Level, Message, When, Action string
}

type streamView struct {
	Name, State, StateText string
	Min, Hour, Reconnects  int64
	Age                    string
	Rule, RuleText         string // relay host rule (provisioning)
}

// ruleText words a relay.Provision* state for the page.
func ruleText(state string) string {
	switch state {
	case "":
		return "–" // lablog keeps no rule for this stream
	case relay.ProvisionRulePosted:
		return "posted"
	case relay.ProvisionWaiting:
		return "waiting for the host"
	case relay.ProvisionHostUnreachable:
		return "host unreachable"
	case relay.ProvisionHostUnexpected:
		return "host answers unexpectedly"
	case relay.ProvisionTokenExpired:
		return "token expired"
	case relay.ProvisionTokenInvalid:
		return "token unusable"
	}
	return state
}

func (m *Monitor) view(s Snapshot) pageView {
	clock := func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.Local().Format("15:04:05")
	}
	ago := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return humanDuration(s.Time.Sub(*t)) + " ago"
	}
	v := pageView{
		Health:        s.Health,
		Word:          strings.ToUpper(s.Health),
		Version:       s.Version,
		Uptime:        humanDuration(time.Duration(s.UptimeSeconds) * time.Second),
		Updated:       s.Time.Local().Format("15:04:05"),
		ClockSynced:   s.ClockSynced,
		ClockExpected: s.ClockExpected,
		Problems:      s.Problems,
		RefreshMillis: m.opts.Refresh.Milliseconds(),
	}
	for _, f := range s.Faults {
		when := "last " + f.Last.Local().Format(time.DateTime) + " (" + ago(&f.Last) + ")"
		if !f.First.Equal(f.Last) {
			when += ", first " + f.First.Local().Format(time.DateTime)
		}
		v.Faults = append(v.Faults, faultView{Kind: f.Kind, Level: f.Level, Message: f.Message, When: when, Action: f.Action})
	}
	for _, st := range s.Streams {
		sv := streamView{Name: st.Name, State: st.State, Min: st.MessagesLastMinute, Hour: st.MessagesLastHour,
			Reconnects: st.ReconnectsToday, Age: "never", Rule: st.Provision, RuleText: ruleText(st.Provision)}
		if st.LastMessageAgeSeconds != nil {
			sv.Age = humanDuration(time.Duration(*st.LastMessageAgeSeconds*float64(time.Second))) + " ago"
		}
		switch st.State {
		case StateReconnecting:
			sv.StateText = "reconnecting since " + clock(st.Since) + " (" + ago(st.Since) + ")"
		case StateError:
			msg := st.LastError
			if msg == "" {
				msg = "not connected"
			}
			sv.StateText = "error: " + msg + " (since " + clock(st.Since) + ")"
		case StateTokenExpiring:
			sv.StateText = "token expiring" + expiryText(s.Time, st.TokenExpiresAt)
		case StateTokenExpired:
			sv.StateText = "token expired" + expiryText(s.Time, st.TokenExpiresAt)
		default:
			sv.StateText = st.State
		}
		v.Streams = append(v.Streams, sv)
	}
	b := s.Buffer
	v.Buffer.Size = HumanBytes(b.SizeBytes)
	if b.MaxBytes > 0 {
		v.Buffer.Size += " of " + HumanBytes(b.MaxBytes)
	}
	v.Buffer.Waiting = fmt.Sprint(b.RecordsWaiting)
	v.Buffer.Oldest = "–"
	if b.OldestWaiting != nil {
		v.Buffer.Oldest = b.OldestWaiting.UTC().Format("2006-01-02 15:04 UTC")
	}
	v.Buffer.Writer = fmt.Sprintf("ok, queue %d of %d", b.QueueDepth, b.QueueCapacity)
	if b.WriterStalled {
		v.Buffer.Writer = "STALLED"
		if b.WriterError != "" {
			v.Buffer.Writer += ": " + b.WriterError
		}
	}
	v.Buffer.Dropped = fmt.Sprintf("%d (%d in the last hour)", b.DroppedTotal, b.DroppedLastHour)
	if c := s.Analytics; c != nil {
		v.Analytics = analyticsText(*c)
	}

	a := s.Archive
	v.Archive.Available = a.Available
	v.Archive.Drive = "mounted at " + a.Path
	if !a.Available {
		p := a.Problem
		if p == "" {
			p = "not checked yet"
		}
		v.Archive.Drive = "NOT available: " + p
	}
	v.Archive.Free = "–"
	if a.FreeBytes != nil {
		v.Archive.Free = HumanBytes(int64(*a.FreeBytes))
	}
	v.Archive.Today = fmt.Sprintf("%d files, %s", a.FilesToday, HumanBytes(a.BytesToday))
	v.Archive.Compaction = "not yet"
	if c := a.LastCompaction; c != nil {
		v.Archive.Compaction = clock(&c.FinishedAt) + " (" + ago(&c.FinishedAt) + "): "
		if c.OK {
			v.Archive.Compaction += fmt.Sprintf("ok, %d files, %s", c.Files, HumanBytes(c.Bytes))
		} else {
			v.Archive.Compaction += "FAILED: " + c.Error
		}
	}
	v.Archive.LastError = "none"
	if a.LastError != "" {
		v.Archive.LastError = a.LastError + " (" + ago(a.LastErrorAt) + ")"
	}
	v.Upload = viewUpload(s.Upload, ago)
	return v
}

// analyticsText is the store's counts in words (the page's JavaScript
// writes the same).
func analyticsText(c analytics.Counts) string {
	return fmt.Sprintf("%d student graphs, %d commands, %d to export", c.Graphs, c.Commands, c.Due)
}
