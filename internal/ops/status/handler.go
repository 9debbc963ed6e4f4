package status

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/practable/lablog/internal/platform/httpserve"
	"github.com/practable/lablog/internal/platform/logkey"
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
	// Uncompressed: gzip's deflate state is about 800 KiB of heap for
	// every scrape, a tenth of an idle lablog, to save a few KiB on a LAN.
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{DisableCompression: true}))
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
		m.opts.Logger.Error("status page", logkey.Err, err)
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
