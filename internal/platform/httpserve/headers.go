package httpserve

import (
	"net"
	"net/http"
	"os"
	"strings"
)

// DefaultCSP forbids everything a JSON or text answer never needs: scripts,
// styles, frames, being framed. A handler serving a page sets its own
// (PageCSP).
const DefaultCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// PageCSP is the policy of a page whose only script and style are inline
// blocks carrying nonce, and which fetches only from its own origin.
func PageCSP(nonce string) string {
	return "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce + "'; " +
		"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

// SecurityHeaders sets, before h runs, the headers every answer carries:
// never framed (clickjacking), never sniffed into another type, no
// referrer leaked, and DefaultCSP unless h sets its own.
func SecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", DefaultCSP)
		h.ServeHTTP(w, r)
	})
}

// hostSet is the names a Host header may carry (lower case, no trailing
// dot); any means every name.
type hostSet struct {
	names map[string]bool
	any   bool
}

func newHostSet(extra []string) hostSet {
	s := hostSet{names: map[string]bool{"localhost": true}}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = normalHost(h)
		s.names[h] = true
		s.names[h+".local"] = true // mDNS, as a Pi announces itself
	}
	for _, h := range extra {
		if h == "*" {
			s.any = true
		}
		s.names[normalHost(h)] = true
	}
	return s
}

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// allowed reports whether host (a Host header, port optional) names this
// server: an IP literal (a browser sends one only to that very address), or
// a known name.
func (s hostSet) allowed(host string) bool {
	if s.any {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if net.ParseIP(host) != nil {
		return true
	}
	return s.names[normalHost(host)]
}

// check answers 421 Misdirected Request, and nothing else, to a request
// for a name that is not this server's.
func (s hostSet) check(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allowed(r.Host) {
			w.Header().Set("Connection", "close")
			http.Error(w, "unknown host name; add it to the listener's hosts in the configuration", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
