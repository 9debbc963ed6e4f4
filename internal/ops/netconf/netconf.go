// Package netconf turns lablog/network.yaml, the network settings a
// technician puts on the boot partition, into NetworkManager keyfiles.
// It does no I/O: the caller reads the file and writes the keyfiles.
package netconf

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Priority is the autoconnect-priority of every connection from
// network.yaml: above NetworkManager's default (0), which is what the
// connections cloud-init makes from Raspberry Pi Imager's settings get, so
// where both know a network, lablog's settings win.
const Priority = 100

// Prefix starts the name of every keyfile and connection from network.yaml,
// so that an import can replace exactly the set it made last time.
const Prefix = "lablog-"

// Settings is a network.yaml.
type Settings struct {
	// Country is the Wi-Fi regulatory domain (ISO 3166 alpha-2, e.g. GB).
	// Required with wifi: the Pi keeps its radio off without one.
	Country string `yaml:"country,omitempty"`
	// Wifi lists the networks to join, the first preferred.
	Wifi []Wifi `yaml:"wifi,omitempty"`
	// Ethernet sets the wired port; left out, it keeps DHCP.
	Ethernet *IPv4 `yaml:"ethernet,omitempty"`
}

// Wifi is one wireless network.
type Wifi struct {
	SSID string `yaml:"ssid"`
	// Password is the WPA passphrase (8 to 63 characters) or the 64 hex
	// digits of the pre-shared key.
	Password string `yaml:"password,omitempty"`
	// Security is wpa2 (the default: WPA2 or WPA2/WPA3 transition
	// networks), wpa3 (SAE only) or open (said, never implied by a
	// forgotten password).
	Security string `yaml:"security,omitempty"`
	Hidden   bool   `yaml:"hidden,omitempty"`
	IPv4     `yaml:",inline"`
}

// IPv4 is a static address; all empty means DHCP.
type IPv4 struct {
	// Address with its prefix length, e.g. 192.168.10.50/24.
	Address string   `yaml:"address,omitempty"`
	Gateway string   `yaml:"gateway,omitempty"`
	DNS     []string `yaml:"dns,omitempty"`
	// Interface limits the connection to one device (e.g. eth0).
	Interface string `yaml:"interface,omitempty"`
}

// Keyfile is one NetworkManager connection file: Name is its file name in
// /etc/NetworkManager/system-connections, to be written with mode 0600.
type Keyfile struct {
	Name    string
	Content string
}

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
var ifaceRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)
var hexRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// Parse reads and checks a network.yaml. Unknown keys are errors, and every
// error names its field.
func Parse(data []byte) (Settings, error) {
	var s Settings
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) { // no document at all
			return s, errors.New("network.yaml is empty: give wifi or ethernet")
		}
		return s, fmt.Errorf("network.yaml: %w", err)
	}
	return s, s.Validate()
}

// Validate reports every bad field at once.
func (s Settings) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if len(s.Wifi) == 0 && s.Ethernet == nil {
		bad("network.yaml", "neither wifi nor ethernet is set")
	}
	if s.Country != "" && !countryRE.MatchString(s.Country) {
		bad("country", "%q is not a two-letter country code in capitals (e.g. GB)", s.Country)
	}
	if len(s.Wifi) > 0 && s.Country == "" {
		bad("country", "required with wifi: the Wi-Fi radio stays off until the country is set")
	}
	seen := map[string]bool{}
	for i, w := range s.Wifi {
		f := fmt.Sprintf("wifi[%d]", i)
		switch {
		case w.SSID == "":
			bad(f+".ssid", "missing")
		case len(w.SSID) > 32:
			bad(f+".ssid", "%d bytes, at most 32", len(w.SSID))
		case !utf8.ValidString(w.SSID) || strings.ContainsAny(w.SSID, "\x00\r\n"):
			bad(f+".ssid", "holds a control character")
		case seen[w.SSID]:
			bad(f+".ssid", "%q is listed twice", w.SSID)
		}
		seen[w.SSID] = true
		switch w.security() {
		case "open":
			if w.Password != "" {
				bad(f+".password", "given for an open network (security: open)")
			}
		case "wpa2", "wpa3":
			if w.Password == "" {
				bad(f+".password", "missing (or say security: open)")
			} else if err := checkPassword(w.Password, w.security()); err != nil {
				bad(f+".password", "%v", err)
			}
		default:
			bad(f+".security", "%q: want wpa2, wpa3 or open", w.Security)
		}
		for _, e := range w.IPv4.check() {
			bad(f+"."+e.field, "%s", e.msg)
		}
	}
	if s.Ethernet != nil {
		for _, e := range s.Ethernet.check() {
			bad("ethernet."+e.field, "%s", e.msg)
		}
	}
	return errors.Join(errs...)
}

func (w Wifi) security() string {
	if w.Security != "" {
		return w.Security
	}
	return "wpa2"
}

func checkPassword(p, security string) error {
	if hexRE.MatchString(p) {
		if security == "wpa3" {
			return errors.New("WPA3 (SAE) takes the passphrase, not a 64-digit key")
		}
		return nil
	}
	n := utf8.RuneCountInString(p)
	if n < 8 || n > 63 {
		return fmt.Errorf("%d characters: a WPA passphrase has 8 to 63 (or is 64 hex digits)", n)
	}
	for _, r := range p {
		if r < 0x20 || r > 0x7e {
			return errors.New("a WPA passphrase is printable ASCII only")
		}
	}
	return nil
}

type fieldErr struct{ field, msg string }

func (ip IPv4) check() []fieldErr {
	var errs []fieldErr
	if ip.Interface != "" && !ifaceRE.MatchString(ip.Interface) {
		errs = append(errs, fieldErr{"interface", fmt.Sprintf("%q is not an interface name", ip.Interface)})
	}
	if ip.Address == "" {
		if ip.Gateway != "" || len(ip.DNS) > 0 {
			errs = append(errs, fieldErr{"address", "missing: gateway and dns are for a static address"})
		}
		return errs
	}
	p, err := netip.ParsePrefix(ip.Address)
	if err != nil || !p.Addr().Is4() {
		return append(errs, fieldErr{"address", fmt.Sprintf("%q: want an IPv4 address with its prefix length, e.g. 192.168.10.50/24", ip.Address)})
	}
	if p.Bits() < 1 || p.Bits() > 32 || p.Addr() == p.Masked().Addr() && p.Bits() < 31 {
		errs = append(errs, fieldErr{"address", fmt.Sprintf("%q is a network, not a host address", ip.Address)})
	}
	if ip.Gateway != "" {
		g, err := netip.ParseAddr(ip.Gateway)
		switch {
		case err != nil || !g.Is4():
			errs = append(errs, fieldErr{"gateway", fmt.Sprintf("%q is not an IPv4 address", ip.Gateway)})
		case !p.Masked().Contains(g):
			errs = append(errs, fieldErr{"gateway", fmt.Sprintf("%s is outside %s", g, p.Masked())})
		}
	}
	for i, d := range ip.DNS {
		if a, err := netip.ParseAddr(d); err != nil || !a.Is4() {
			errs = append(errs, fieldErr{fmt.Sprintf("dns[%d]", i), fmt.Sprintf("%q is not an IPv4 address", d)})
		}
	}
	return errs
}

// Redacted is the settings as YAML without any password: what an import
// leaves on the boot partition to say what it installed, the secrets gone.
func (s Settings) Redacted() ([]byte, error) {
	c := s
	c.Wifi = make([]Wifi, len(s.Wifi))
	for i, w := range s.Wifi {
		w.Password = ""
		if w.Security == "" {
			w.Security = w.security() // "password" gone, the kind stays said
		}
		c.Wifi[i] = w
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("network.yaml: %w", err)
	}
	return out, nil
}

// Keyfiles renders the settings (already valid) as NetworkManager keyfiles,
// named lablog-*.nmconnection.
func (s Settings) Keyfiles() []Keyfile {
	var out []Keyfile
	for i, w := range s.Wifi {
		id := Prefix + "wifi-" + slug(w.SSID)
		var b strings.Builder
		connection(&b, id, "wifi", w.Interface, Priority-i)
		fmt.Fprintf(&b, "\n[wifi]\nmode=infrastructure\nssid=%s\n", ssidValue(w.SSID))
		if w.Hidden {
			b.WriteString("hidden=true\n")
		}
		switch w.security() {
		case "wpa2":
			// wpa-psk joins WPA2 and WPA2/WPA3 transition networks.
			fmt.Fprintf(&b, "\n[wifi-security]\nkey-mgmt=wpa-psk\npsk=%s\n", escape(w.Password))
		case "wpa3":
			fmt.Fprintf(&b, "\n[wifi-security]\nkey-mgmt=sae\npsk=%s\n", escape(w.Password))
		}
		ipv4(&b, w.IPv4)
		out = append(out, Keyfile{Name: id + ".nmconnection", Content: b.String()})
	}
	if e := s.Ethernet; e != nil {
		id := Prefix + "ethernet"
		var b strings.Builder
		connection(&b, id, "ethernet", e.Interface, Priority)
		b.WriteString("\n[ethernet]\n")
		ipv4(&b, *e)
		out = append(out, Keyfile{Name: id + ".nmconnection", Content: b.String()})
	}
	return out
}

func connection(b *strings.Builder, id, typ, iface string, prio int) {
	fmt.Fprintf(b, "# From lablog/network.yaml on the boot partition (lablog-import-config).\n"+
		"[connection]\nid=%s\nuuid=%s\ntype=%s\nautoconnect-priority=%d\n", id, uuid(id), typ, prio)
	if iface != "" {
		fmt.Fprintf(b, "interface-name=%s\n", iface)
	}
}

func ipv4(b *strings.Builder, ip IPv4) {
	if ip.Address == "" {
		b.WriteString("\n[ipv4]\nmethod=auto\n")
	} else {
		b.WriteString("\n[ipv4]\nmethod=manual\naddress1=" + ip.Address)
		if ip.Gateway != "" {
			b.WriteString("," + ip.Gateway)
		}
		b.WriteString("\n")
		if len(ip.DNS) > 0 {
			b.WriteString("dns=" + strings.Join(ip.DNS, ";") + ";\n")
		}
	}
	b.WriteString("\n[ipv6]\nmethod=auto\n")
}

// uuid is a fixed (version 5 style) UUID for a connection id, so that a
// re-import replaces the connection rather than adding one.
func uuid(id string) string {
	h := sha1.Sum([]byte("lablog network.yaml " + id))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// slug is a file-name-safe form of an SSID, with a short hash when
// characters were replaced, so that two SSIDs never share a file.
func slug(ssid string) string {
	var b strings.Builder
	changed := false
	for _, r := range ssid {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	if changed {
		h := sha1.Sum([]byte(ssid))
		fmt.Fprintf(&b, "-%x", h[:3])
	}
	return b.String()
}

// ssidValue writes an SSID as the keyfile reads it: plain when that is
// unambiguous, else as its bytes (NetworkManager's list form, "b1;b2;").
func ssidValue(ssid string) string {
	plain := ssid == strings.TrimSpace(ssid)
	for _, r := range ssid {
		if r < 0x20 || r > 0x7e || r == ';' || r == '\\' {
			plain = false
		}
	}
	if plain {
		return ssid
	}
	var b strings.Builder
	for _, c := range []byte(ssid) {
		b.WriteString(strconv.Itoa(int(c)) + ";")
	}
	return b.String()
}

// escape writes a string value as a keyfile (GKeyFile) reads it back.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	if strings.HasPrefix(s, " ") {
		s = `\s` + s[1:]
	}
	return s
}
