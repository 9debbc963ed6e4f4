// Package service installs lablog as a systemd service. The unit file is
// ours, kept in one place (lablog.service.tmpl) so that `lablog install`
// and the appliance image ship the same thing: kardianos/service's default
// unit waits 120 s between restarts and has no watchdog.
package service

import (
	"bytes"
	_ "embed"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// Name is the service's name; the unit is Name + ".service".
const Name = "lablog"

// DefaultUser is the dedicated user lablog runs as.
const DefaultUser = "lablog"

// DefaultRelayUnit is the relay host's service, which feeds the streams.
const DefaultRelayUnit = "relay-host.service"

//go:embed lablog.service.tmpl
var unitSource string

var unitTemplate = template.Must(template.New("unit").Option("missingkey=error").Parse(unitSource))

// Unit holds what varies between installations (wire.ServiceUnit derives
// it from a configuration).
type Unit struct {
	Exec       string // absolute path of the lablog binary
	Config     string // absolute path of lablog.yaml
	User       string // default DefaultUser
	BufferDir  string // folder of buffer.path
	ArchiveDir string // archive.path
	LEDDir     string // led.path; "" leaves the LED alone
	RelayUnit  string // default DefaultRelayUnit
}

// safePath keeps unit files free of quoting: no spaces, quotes, "%"
// specifiers or "$" expansions can sneak in.
var safePath = regexp.MustCompile(`^/[A-Za-z0-9._/@+:-]*$`)

var safeName = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)

// Render returns the unit file.
func (u Unit) Render() ([]byte, error) {
	if u.User == "" {
		u.User = DefaultUser
	}
	if u.RelayUnit == "" {
		u.RelayUnit = DefaultRelayUnit
	}
	for _, p := range []struct{ what, path string }{{"binary", u.Exec}, {"config", u.Config},
		{"buffer folder", u.BufferDir}, {"archive", u.ArchiveDir}} {
		if !safePath.MatchString(p.path) {
			return nil, fmt.Errorf("unit: %s path %q must be absolute and use only letters, digits and ._/@+:-", p.what, p.path)
		}
	}
	if u.LEDDir != "" && !safePath.MatchString(u.LEDDir) {
		return nil, fmt.Errorf("unit: LED path %q must be absolute and use only letters, digits and ._/@+:-", u.LEDDir)
	}
	if !safeName.MatchString(u.User) {
		return nil, fmt.Errorf("unit: user %q is not a valid user name", u.User)
	}
	if !strings.HasSuffix(u.RelayUnit, ".service") || !safeName.MatchString(strings.ToLower(strings.TrimSuffix(u.RelayUnit, ".service"))) {
		return nil, fmt.Errorf("unit: relay unit %q is not a service name", u.RelayUnit)
	}
	data := struct {
		Unit
		ArchiveMount string
	}{u, MountUnit(u.ArchiveDir)}
	var buf bytes.Buffer
	if err := unitTemplate.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("unit: %w", err)
	}
	return buf.Bytes(), nil
}

// MountUnit is the name of the mount unit systemd makes for path, as
// `systemd-escape --path --suffix=mount` prints it: /media/lablog gives
// media-lablog.mount.
func MountUnit(path string) string {
	p := strings.Trim(filepath.Clean(path), "/")
	if p == "" {
		return "-.mount"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String() + ".mount"
}
