package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxRange caps how many streams one range may expand to, so that a typo
// such as spin0-99999 fails instead of dialling a hundred thousand streams.
const maxRange = 1000

// Stream names follow the relay host's rule ([a-zA-Z0-9\-/]+) without the
// slash: a name is also a folder name in the archive (stream=<name>).
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9\-]+$`)

// Validate checks the whole config and returns every problem at once, as
// Errors (nil when the config is valid). Fields are named but lines are not
// known here; Parse and Load add them.
func (c Config) Validate() error {
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	positive := func(field string, n int64, shown any) {
		if n <= 0 {
			add(field, "must be positive, got %v", shown)
		}
	}

	if c.Buffer.Path == "" {
		add("buffer.path", "must not be empty")
	}
	positive("buffer.max_size", int64(c.Buffer.MaxSize), c.Buffer.MaxSize)
	if int64(int(c.Buffer.MaxSize)) != int64(c.Buffer.MaxSize) {
		// bbolt's MaxSize is an int: on 32-bit ARM it would overflow.
		add("buffer.max_size", "%v is too large for this platform", c.Buffer.MaxSize)
	}
	positive("buffer.queue", int64(c.Buffer.Queue), c.Buffer.Queue)
	if ci := c.Buffer.CommitInterval; ci < 0 || ci > 5*time.Second {
		add("buffer.commit_interval", "must be between 0s and 5s, got %v", ci)
	}

	if c.Archive.Path == "" {
		add("archive.path", "must not be empty")
	}
	switch c.Archive.Require {
	case RequireMarker, RequireMountpoint, RequireNone:
	default:
		add("archive.require", "must be marker, mountpoint or none, got %q", c.Archive.Require)
	}
	positive("archive.row_group_rows", int64(c.Archive.RowGroupRows), c.Archive.RowGroupRows)
	if c.Archive.KeepDays < 0 {
		add("archive.keep_days", "must be 0 (keep forever) or a number of days, got %d", c.Archive.KeepDays)
	}

	cp := c.Compaction
	if cp.Interval < time.Second {
		add("compaction.interval", "must be at least 1s, got %v", cp.Interval)
	}
	// A grace is judged against a valid interval only: blame one key.
	if cp.Interval >= time.Second && (cp.Grace < 0 || cp.Grace >= cp.Interval) {
		add("compaction.grace", "must be at least 0 and less than compaction.interval (%v), got %v", cp.Interval, cp.Grace)
	}
	positive("compaction.retry", int64(cp.Retry), cp.Retry)
	positive("analytics.export", int64(c.Analytics.Export), c.Analytics.Export)
	if c.Analytics.TimeZone != "" {
		if _, err := time.LoadLocation(c.Analytics.TimeZone); err != nil {
			add("analytics.time_zone", "%q is no IANA time zone (e.g. Europe/London): %v", c.Analytics.TimeZone, err)
		}
	}

	s := c.Sources
	positive("sources.read_limit", int64(s.ReadLimit), s.ReadLimit)
	positive("sources.ping_interval", int64(s.PingInterval), s.PingInterval)
	if s.ReadTimeout <= s.PingInterval {
		// The pong to our ping is what keeps a quiet stream's read alive.
		add("sources.read_timeout", "must exceed sources.ping_interval (%v), got %v", s.PingInterval, s.ReadTimeout)
	}
	positive("sources.min_backoff", int64(s.MinBackoff), s.MinBackoff)
	if s.MaxBackoff < s.MinBackoff {
		add("sources.max_backoff", "must be at least sources.min_backoff (%v), got %v", s.MinBackoff, s.MaxBackoff)
	}
	positive("sources.token_warning", int64(s.TokenWarning), s.TokenWarning)
	positive("sources.rules_interval", int64(s.RulesInterval), s.RulesInterval)

	if c.Status.Listen != "" {
		if err := checkListen(c.Status.Listen); err != nil {
			add("status.listen", "%v", err)
		}
	}
	for i, h := range c.Status.Hosts {
		if err := checkHostName(h); err != nil {
			add(fmt.Sprintf("status.hosts[%d]", i), "%v", err)
		}
	}
	if c.LED.Path != "" && !filepath.IsAbs(c.LED.Path) {
		add("led.path", "must be an absolute path (a sysfs LED folder), got %q", c.LED.Path)
	}

	c.validateUpload(add)
	c.validateAddLog(add)
	c.validatePrivacy(add)

	if len(c.StreamSpecs) == 0 && !c.AddLog.Enabled() {
		add("streams", "at least one stream is required (or an addlog listener)")
	}
	seen := map[string]int{} // stream name -> index of the spec that made it
	for i, sp := range c.StreamSpecs {
		f := fmt.Sprintf("streams[%d]", i)
		names, isRange, err := expand(sp.Name)
		if err != nil {
			add(f+".name", "%v", err)
		}
		c.checkStream(f, sp, isRange, add)
		// Report each clash between two entries once, naming both.
		dups := map[int][]string{}
		var order []int
		for _, n := range names {
			if j, ok := seen[n]; ok {
				if dups[j] == nil {
					order = append(order, j)
				}
				dups[j] = append(dups[j], n)
				continue
			}
			seen[n] = i
		}
		for _, j := range order {
			add(f+".name", "%s repeats stream %s of streams[%d] (%s)", sp.Name, list(dups[j]), j, c.StreamSpecs[j].Name)
		}
	}
	if errs == nil {
		return nil
	}
	return errs
}

// checkStream checks how entry f is read: its kind and its relay token.
func (c Config) checkStream(f string, sp StreamSpec, isRange bool, add func(field, format string, args ...any)) {
	kind, n := sp.kind()
	switch {
	case n > 1:
		add(f, "set only one of url, relay_host and relay")
		return
	case n == 0:
		add(f, "set url, relay_host or relay")
		return
	}
	if sp.Token != "" {
		if err := checkToken(sp.Token); err != nil {
			add(f+".token", "%v", err)
		}
		if isRange {
			add(f+".token", "a token is for one stream, and %s is a range: put the tokens in tokens_dir", sp.Name)
		}
	}
	if sp.Access != "" && isRange {
		add(f+".access", "an access URL is for one stream, and %s is a range: put log.access.<name> files in tokens_dir", sp.Name)
	}
	switch kind {
	case KindURL:
		if err := checkURL(sp.URL); err != nil {
			add(f+".url", "%v", err)
		}
		if isRange {
			add(f+".name", "%s is a range, which needs relay_host or relay: with url every stream would share one URL", sp.Name)
		}
		for _, kv := range [][2]string{{"tokens_dir", sp.TokensDir}, {"token", sp.Token}, {"access", sp.Access}} {
			if kv[1] != "" {
				add(f+"."+kv[0], "only relay and relay_host streams use relay tokens")
			}
		}
	case KindRelayHost:
		if _, err := relayBase(sp.RelayHost); err != nil {
			add(f+".relay_host", "%v", err)
		}
		if sp.Access != "" {
			if err := checkAccess(sp.Access); err != nil {
				add(f+".access", "%v", err)
			}
			if sp.Token == "" && sp.TokensDir == "" {
				add(f+".access", "set token or tokens_dir too: lablog provisions the host's rule with both")
			}
		}
		if sp.Token != "" && sp.Access == "" && sp.TokensDir == "" {
			add(f+".token", "set access too (the relay's {access}/session/{topic} URL), or tokens_dir holding log.access.%s", sp.Name)
		}
	case KindRelay:
		if _, err := accessBase(sp.Relay); err != nil {
			add(f+".relay", "%v", err)
		}
		if sp.Access != "" {
			add(f+".access", "only relay_host streams use access: a relay stream joins <relay>/session/<name>-log")
		}
		if sp.Token == "" && sp.TokensDir == "" && c.Sources.TokensDir == "" {
			add(f, "a relay stream needs a token: set token, tokens_dir or sources.tokens_dir")
		}
	}
}

// kind says which of url, relay_host and relay the entry sets, and how
// many of them it sets.
func (sp StreamSpec) kind() (Kind, int) {
	var k Kind
	n := 0
	for _, c := range []struct {
		v string
		k Kind
	}{{sp.URL, KindURL}, {sp.RelayHost, KindRelayHost}, {sp.Relay, KindRelay}} {
		if c.v != "" {
			k = c.k
			n++
		}
	}
	return k, n
}

func list(names []string) string {
	if len(names) > 3 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names, ", ")
}

// Streams returns every stream to record, ranges expanded, in file order.
// It is meant for a valid Config; entries that do not validate are skipped.
func (c Config) Streams() []Stream {
	var out []Stream
	for _, sp := range c.StreamSpecs {
		names, isRange, err := expand(sp.Name)
		if err != nil {
			continue
		}
		kind, k := sp.kind()
		if k != 1 {
			continue
		}
		token, access := sp.Token, sp.Access
		if isRange {
			token, access = "", "" // invalid on a range
		}
		switch kind {
		case KindURL:
			if !isRange {
				out = append(out, Stream{Name: sp.Name, Kind: KindURL, URL: sp.URL})
			}
		case KindRelayHost:
			base, err := relayBase(sp.RelayHost)
			if err != nil {
				continue
			}
			for _, n := range names {
				out = append(out, Stream{Name: n, Kind: KindRelayHost, URL: base + "/ws/" + n, RelayHost: base,
					TokensDir: sp.TokensDir, Token: token, Access: access})
			}
		case KindRelay:
			base, err := accessBase(sp.Relay)
			if err != nil {
				continue
			}
			dir := sp.TokensDir
			if dir == "" {
				dir = c.Sources.TokensDir
			}
			for _, n := range names {
				out = append(out, Stream{Name: n, Kind: KindRelay, Relay: base, TokensDir: dir, Token: token})
			}
		}
	}
	return out
}

// ExpandList turns a comma-separated list of names and ranges
// ("spin30-41,pend00") into stream names, with the streams list's rules; a
// name given twice, or no name at all, is an error.
func ExpandList(list string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, spec := range strings.Split(list, ",") {
		if spec = strings.TrimSpace(spec); spec == "" {
			continue
		}
		got, _, err := expand(spec)
		if err != nil {
			return nil, fmt.Errorf("streams %q: %w", spec, err)
		}
		for _, n := range got {
			if seen[n] {
				return nil, fmt.Errorf("streams %q: %s is given twice", list, n)
			}
			seen[n] = true
		}
		names = append(names, got...)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("streams %q: no stream names", list)
	}
	return names, nil
}

// JoinList is ExpandList's inverse, for people to read: every name, runs of
// consecutive numbers as ranges, names grouped by prefix in order of first
// appearance ("spin30-33,pend00-01"), so a long list is short but complete.
func JoinList(names []string) string {
	type run struct {
		prefix, first string // the first name's text and digits
		lo, hi        int
	}
	byPrefix := map[string][]*run{}
	var order []string
	for _, n := range names {
		prefix, digits := splitDigits(n)
		v, err := strconv.Atoi(digits)
		if digits == "" || err != nil {
			prefix, digits, v = n, "", 0 // not numbered: a run of its own
		}
		if _, ok := byPrefix[prefix]; !ok {
			order = append(order, prefix)
		}
		rs := byPrefix[prefix]
		if digits != "" && len(rs) > 0 {
			if r := rs[len(rs)-1]; r.first != "" && v == r.hi+1 && fmt.Sprintf("%s%0*d", prefix, len(r.first), v) == n {
				r.hi = v
				continue
			}
		}
		r := &run{prefix: prefix, first: digits, lo: v, hi: v}
		byPrefix[prefix] = append(rs, r)
	}
	var parts []string
	for _, p := range order {
		for _, r := range byPrefix[p] {
			part := r.prefix + r.first
			if r.hi > r.lo {
				part += fmt.Sprintf("-%0*d", len(r.first), r.hi)
			}
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, ",")
}

// expand turns a name or range into stream names. A name is a range when
// the text on both sides of its last "-" ends in digits; the right side may
// repeat the prefix (spin30-spin41) or not (spin30-41).
func expand(name string) (names []string, isRange bool, err error) {
	if name == "" {
		return nil, false, fmt.Errorf("is required")
	}
	if !nameRE.MatchString(name) {
		return nil, false, fmt.Errorf("%q: only letters, digits and - are allowed", name)
	}
	names = []string{name}
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		prefix, first := splitDigits(name[:i])
		endPrefix, last := splitDigits(name[i+1:])
		if first != "" && last != "" {
			isRange = true
			names, err = expandRange(name, prefix, first, endPrefix, last)
			if err != nil {
				return nil, true, err
			}
		}
	}
	for _, n := range names {
		if n == "api" {
			return nil, isRange, fmt.Errorf("api is reserved by the relay host")
		}
	}
	return names, isRange, nil
}

func expandRange(name, prefix, first, endPrefix, last string) ([]string, error) {
	if endPrefix != "" && endPrefix != prefix {
		return nil, fmt.Errorf("range %s: both ends must have the prefix %q (write %s%s-%s)", name, prefix, prefix, first, last)
	}
	lo, err1 := strconv.Atoi(first)
	hi, err2 := strconv.Atoi(last)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("range %s: numbers too large", name)
	}
	if lo > hi {
		return nil, fmt.Errorf("range %s: start %s is after end %s", name, first, last)
	}
	if hi-lo >= maxRange {
		return nil, fmt.Errorf("range %s: %d streams, more than the %d allowed", name, hi-lo+1, maxRange)
	}
	names := make([]string, 0, hi-lo+1)
	for n := lo; n <= hi; n++ {
		names = append(names, fmt.Sprintf("%s%0*d", prefix, len(first), n))
	}
	return names, nil
}

// splitDigits splits s into its text and its trailing digits.
func splitDigits(s string) (text, digits string) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i], s[i:]
}

// checkHostName accepts a bare host name as a Host header carries it
// (no scheme, port or path), or "*" for any.
func checkHostName(h string) error {
	if h == "*" {
		return nil
	}
	if h == "" || strings.ContainsAny(h, ":/ @") {
		return fmt.Errorf("must be a host name such as lablog.example.org (no scheme, port or path), got %q", h)
	}
	return nil
}

// checkListen accepts what net.Listen("tcp", ...) takes: [host]:port.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port or :port (%v)", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// parseURL parses a URL of the file and refuses user:password@ in it, the
// one part of a URL that must never be quoted back: lablog authenticates
// with relay tokens only.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without the URL, which may hold a password
	}
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %v", err)
	}
	if u.User != nil {
		return nil, errors.New("has a user name or password (user:password@host), which lablog never sends: remove it (relay tokens go in token or tokens_dir)")
	}
	return u, nil
}

func checkURL(raw string) error {
	u, err := parseURL(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("scheme must be ws or wss, got %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// accessBase checks a relay's access base URL and returns it without a
// trailing slash. It may have a path (https://app.practable.io/ed0/access).
func accessBase(raw string) (string, error) {
	u, err := parseURL(raw)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	// Tokens travel in the request: plain http only to this machine (a
	// relay under test), never over a network.
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return "", fmt.Errorf("scheme must be https, got %q (http only for a relay on this machine): this is the relay's access URL, e.g. https://relay-access.practable.io", u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must have no query, fragment or user", raw)
	}
	if strings.Contains(u.Path+"/", "/session/") {
		return "", fmt.Errorf("%q: give the base only: /session/<topic> is added for you", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// checkAccess checks an access URL: {base}/session/{topic}.
func checkAccess(raw string) error {
	base, topic, ok := strings.Cut(raw, "/session/")
	if !ok || topic == "" || strings.ContainsAny(topic, "/?#") {
		return fmt.Errorf("%q: want the relay's access URL {base}/session/{topic}", raw)
	}
	_, err := accessBase(base)
	return err
}

// checkToken checks that a token has the shape of a JWT, without ever
// quoting it: it is a credential.
func checkToken(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || strings.ContainsAny(tok, " \t\r\n") {
		return fmt.Errorf("is not a JWT (want three base64 parts separated by dots)")
	}
	return nil
}

// relayBase checks a relay_host and returns it as a ws or wss base with no
// trailing slash (http becomes ws, https becomes wss).
func relayBase(raw string) (string, error) {
	u, err := parseURL(raw)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("scheme must be ws, wss, http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q must be only scheme://host[:port]: the stream path /ws/<name> is added for you", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
