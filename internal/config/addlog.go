package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// AddLog configures the HTTP front door for today's lab UIs, which POST
// statements to /addLog. It is off while Listen is empty.
type AddLog struct {
	// Listen is the HTTP(S) address (host:port). Empty turns it off.
	Listen string `yaml:"listen"`
	// Hosts are the host names UIs reach it by, besides IP addresses,
	// localhost and this machine's name; "*" allows any (behind a proxy
	// that checks names itself).
	Hosts []string `yaml:"hosts"`
	// CredentialsFile holds one user:password a line: the pairs the UIs'
	// `la` parameter encodes (mode 0600, or 0640 for the service's group).
	// A relative path is resolved against the config file's directory.
	CredentialsFile string `yaml:"credentials_file"`
	// AllowedOrigins are the origins (scheme://host[:port]) of the pages
	// that may call it: the booking site serving the UIs. "*" allows any.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxBody is the largest statement accepted (413 beyond).
	MaxBody Size `yaml:"max_body"`
	// KeepClientAddress records the client's IP address with each
	// statement; off, nothing about the client is kept.
	KeepClientAddress bool `yaml:"keep_client_address"`
	// TrustedProxies are addresses or prefixes (10.0.0.1, 10.0.0.0/8) of
	// reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS, when both files are set, serves HTTPS; the files are read
	// again when they change (a renewed certificate needs no restart).
	TLS TLS `yaml:"tls"`
	// Forward sends every recorded statement on to an upstream logging
	// host (store and forward); off while its URL is empty.
	Forward Forward `yaml:"forward"`
	// Dashboards serves the students' dashboards' API (/studentGraph
	// and friends) beside /addLog.
	Dashboards Dashboards `yaml:"dashboards"`
}

// Dashboards configures the dashboards' API on the addlog listener.
type Dashboards struct {
	// Serve turns it on.
	Serve bool `yaml:"serve"`
	// AllowedOrigins are the dashboards' origins; empty: the addlog
	// section's allowed_origins.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// RequireCredential asks for the addlog Basic credential on these
	// endpoints too. The dashboards send none: for callers behind a proxy
	// that adds one.
	RequireCredential bool `yaml:"require_credential"`
}

// Origins are the origins allowed to call the dashboards' API.
func (d Dashboards) Origins(addlog []string) []string {
	if len(d.AllowedOrigins) > 0 {
		return d.AllowedOrigins
	}
	return addlog
}

// Forward configures store and forward of statements to the upstream
// logging host the UIs used to call.
type Forward struct {
	// URL is the upstream's base URL: statements go to {url}/addLog.
	// Empty turns forwarding off.
	URL string `yaml:"url"`
	// CredentialsFile holds the one user:password line of the upstream's
	// Basic credential (mode 0600). Relative to the config file's folder.
	CredentialsFile string `yaml:"credentials_file"`
	// MinBackoff and MaxBackoff bound the jittered exponential wait after
	// an attempt the upstream did not answer with a 2xx.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Enabled reports whether forwarding is configured.
func (f Forward) Enabled() bool { return f.URL != "" }

// TLS names a PEM certificate (chain) and its key.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether the /addLog listener is configured.
func (a AddLog) Enabled() bool { return a.Listen != "" }

func defaultAddLog() AddLog {
	return AddLog{
		Hosts:           []string{},
		CredentialsFile: "addlog-credentials",
		AllowedOrigins:  []string{},
		MaxBody:         64 * KiB,
		TrustedProxies:  []string{},
		Forward: Forward{
			CredentialsFile: "forward-credentials",
			MinBackoff:      time.Second,
			MaxBackoff:      time.Minute,
		},
		Dashboards: Dashboards{Serve: true, AllowedOrigins: []string{}},
	}
}

// Proxies parses TrustedProxies (validated: every entry parses).
func (a AddLog) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a.TrustedProxies {
		if pre, err := parsePrefix(p); err == nil {
			out = append(out, pre)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validateAddLog checks the addlog section; nothing is required while it is off.
func (c Config) validateAddLog(add func(field, format string, args ...any)) {
	a := c.AddLog
	if !a.Enabled() {
		if a.Forward.Enabled() {
			add("addlog.forward.url", "needs addlog.listen: only statements lablog receives are forwarded")
		}
		return
	}
	if err := checkListen(a.Listen); err != nil {
		add("addlog.listen", "%v", err)
	}
	for i, h := range a.Hosts {
		if err := checkHostName(h); err != nil {
			add(fmt.Sprintf("addlog.hosts[%d]", i), "%v", err)
		}
	}
	if a.CredentialsFile == "" {
		add("addlog.credentials_file", "must not be empty: the UIs' Basic credentials are checked")
	}
	if len(a.AllowedOrigins) == 0 {
		add("addlog.allowed_origins", "must name the origins of the pages that call /addLog (e.g. https://dev.practable.io), or \"*\" for any")
	}
	for i, o := range a.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			add(fmt.Sprintf("addlog.allowed_origins[%d]", i), "%v", err)
		}
	}
	if a.MaxBody < 1*KiB || a.MaxBody > 16*MiB {
		add("addlog.max_body", "must be between 1KiB and 16MiB, got %v", a.MaxBody)
	}
	if a.Dashboards.Serve && !c.Analytics.Live {
		add("addlog.dashboards.serve", "needs analytics.live: the dashboards are answered from the live store")
	}
	for i, o := range a.Dashboards.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			add(fmt.Sprintf("addlog.dashboards.allowed_origins[%d]", i), "%v", err)
		}
	}
	for i, p := range a.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			add(fmt.Sprintf("addlog.trusted_proxies[%d]", i), "%q is not an address or prefix (10.0.0.1, 10.0.0.0/8)", p)
		}
	}
	if (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		add("addlog.tls", "needs both cert_file and key_file, or neither")
	}
	if f := a.Forward; f.Enabled() {
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			add("addlog.forward.url", "%q is not a base URL: want http(s)://host[:port][/path], e.g. https://analytics.example/", f.URL)
		}
		if f.CredentialsFile == "" {
			add("addlog.forward.credentials_file", "must not be empty: the upstream's Basic credential")
		}
		if f.MinBackoff < 10*time.Millisecond || f.MaxBackoff < f.MinBackoff {
			add("addlog.forward.min_backoff", "must be at least 10ms and at most max_backoff, got %v and %v", f.MinBackoff, f.MaxBackoff)
		}
	}
}

// checkOrigin accepts what a browser sends as Origin: scheme://host[:port].
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin: want scheme://host[:port], e.g. https://dev.practable.io", o)
	}
	return nil
}
