package httpserve

import (
	"net/http"
	"strings"
)

// Origins are the browser origins (scheme://host[:port]) allowed to read a
// listener's answers across origins; "*" allows any.
type Origins map[string]bool

// NewOrigins makes Origins of a configured list.
func NewOrigins(list []string) Origins {
	o := Origins{}
	for _, origin := range list {
		o[strings.TrimSuffix(origin, "/")] = true
	}
	return o
}

// Allow sets the CORS answer for an allowed Origin and reports whether it
// was one; a request from any other origin gets no CORS headers, so the
// browser withholds the answer (and, after a preflight, never sends the
// call).
func (o Origins) Allow(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !(o["*"] || o[origin]) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	return true
}
