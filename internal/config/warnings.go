package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Warnings are what keeps a valid config at path from working, found
// without I/O: the example marker (NotReady), and stream URLs whose host is
// a reserved example name (RFC 2606: example.org, *.example, *.invalid,
// *.test), which never answers. lablog config check adds what it finds on
// disk (token and access files).
func (c Config) Warnings(path string) []string {
	var w []string
	if err := c.NotReady(path); err != nil {
		w = append(w, err.Error())
	}
	for i, sp := range c.StreamSpecs {
		for _, f := range []struct{ key, raw string }{
			{"url", sp.URL}, {"relay_host", sp.RelayHost}, {"relay", sp.Relay}, {"access", sp.Access},
		} {
			u, err := url.Parse(f.raw)
			if f.raw != "" && err == nil && placeholderHost(u.Hostname()) {
				w = append(w, fmt.Sprintf("streams[%d].%s: %s is an example host name, which never answers: %s cannot connect",
					i, f.key, u.Hostname(), sp.Name))
			}
		}
	}
	return w
}

// placeholderHost reports whether host is reserved for examples and tests.
func placeholderHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, name := range []string{"example.com", "example.net", "example.org", "example", "invalid", "test"} {
		if host == name || strings.HasSuffix(host, "."+name) {
			return true
		}
	}
	return false
}
