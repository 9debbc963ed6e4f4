package netconf

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const example = `# A lab with a Wi-Fi network and a fixed wired address.
country: GB
wifi:
  - ssid: LabNet
    password: "correct horse battery"
  - ssid: "Spare AP; 2nd floor"
    password: " \\leading space"
    hidden: true
    address: 192.168.10.50/24
    gateway: 192.168.10.1
    dns: [192.168.10.1, 1.1.1.1]
ethernet:
  interface: eth0
  address: 10.1.2.3/16
  gateway: 10.1.0.1
`

// keyfile is a parsed keyfile: "section.key" -> value, as GKeyFile reads it
// (the escapes \\ and \s undone).
func keyfile(t *testing.T, content string) map[string]string {
	t.Helper()
	m := map[string]string{}
	section := ""
	for _, line := range strings.Split(content, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("not a keyfile line: %q", line)
			}
			if strings.HasPrefix(v, `\s`) {
				v = " " + v[2:]
			}
			m[section+"."+k] = strings.ReplaceAll(v, `\\`, `\`)
		}
	}
	return m
}

func TestKeyfiles(t *testing.T) {
	s, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	files := s.Keyfiles()
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	if len(files) != 3 || files[0].Name != "lablog-wifi-LabNet.nmconnection" ||
		!strings.HasPrefix(files[1].Name, "lablog-wifi-Spare_AP__2nd_floor-") || files[2].Name != "lablog-ethernet.nmconnection" {
		t.Fatalf("keyfiles %v", names)
	}
	want := []map[string]string{{
		"connection.id": "lablog-wifi-LabNet", "connection.type": "wifi", "connection.autoconnect-priority": "100",
		"wifi.ssid": "LabNet", "wifi.mode": "infrastructure", "wifi-security.key-mgmt": "wpa-psk",
		"wifi-security.psk": "correct horse battery", "ipv4.method": "auto", "ipv6.method": "auto",
	}, {
		// Listed second: preferred less. An SSID with ';' goes as bytes.
		"connection.autoconnect-priority": "99", "wifi.hidden": "true",
		"wifi.ssid":         "83;112;97;114;101;32;65;80;59;32;50;110;100;32;102;108;111;111;114;",
		"wifi-security.psk": ` \leading space`, "ipv4.method": "manual",
		"ipv4.address1": "192.168.10.50/24,192.168.10.1", "ipv4.dns": "192.168.10.1;1.1.1.1;",
	}, {
		"connection.type": "ethernet", "connection.interface-name": "eth0", "connection.autoconnect-priority": "100",
		"ipv4.method": "manual", "ipv4.address1": "10.1.2.3/16,10.1.0.1",
	}}
	uuids := map[string]bool{}
	for i, f := range files {
		got := keyfile(t, f.Content)
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q\n%s", f.Name, k, got[k], v, f.Content)
			}
		}
		if u := got["connection.uuid"]; len(u) != 36 || uuids[u] {
			t.Errorf("%s: uuid %q (missing, malformed or shared)", f.Name, u)
		}
		uuids[got["connection.uuid"]] = true
		if _, ok := got["ipv4.dns"]; ok && got["ipv4.method"] != "manual" {
			t.Errorf("%s: dns with DHCP", f.Name)
		}
	}
	// The same file gives the same connections (NetworkManager replaces,
	// not adds, on a re-import).
	again, _ := Parse([]byte(example))
	for i, f := range again.Keyfiles() {
		if f != files[i] {
			t.Errorf("%s differs between two conversions", f.Name)
		}
	}
}

func TestOpenAndWPA3(t *testing.T) {
	s, err := Parse([]byte("country: DE\nwifi:\n  - ssid: Cafe\n    security: open\n  - ssid: Secure\n    security: wpa3\n    password: abcdefgh\n"))
	if err != nil {
		t.Fatal(err)
	}
	files := s.Keyfiles()
	if open := keyfile(t, files[0].Content); open["wifi-security.key-mgmt"] != "" || open["wifi.ssid"] != "Cafe" {
		t.Errorf("open network:\n%s", files[0].Content)
	}
	if sae := keyfile(t, files[1].Content); sae["wifi-security.key-mgmt"] != "sae" || sae["wifi-security.psk"] != "abcdefgh" {
		t.Errorf("WPA3 network:\n%s", files[1].Content)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"", "empty"},
		{"country: GB\n", "neither wifi nor ethernet"},
		{"wifi:\n  - ssid: a\n    password: abcdefgh\n", "country: required with wifi"},
		{"country: gb\nethernet: {}\n", `country: "gb"`},
		{"country: GB\nwifi:\n  - ssid: a\n    pasword: abcdefgh\n", "field pasword not found"},
		{"country: GB\nwifi:\n  - ssid: a\n    password: short\n", "wifi[0].password: 5 characters"},
		{"country: GB\nwifi:\n  - ssid: a\n", "wifi[0].password: missing"},
		{"country: GB\nwifi:\n  - ssid: a\n    security: open\n    password: abcdefgh\n", "given for an open network"},
		{"country: GB\nwifi:\n  - ssid: a\n    security: wep\n    password: abcdefgh\n", `wifi[0].security: "wep"`},
		{"country: GB\nwifi:\n  - password: abcdefgh\n", "wifi[0].ssid: missing"},
		{"country: GB\nwifi:\n  - ssid: a\n    password: abcdefgh\n  - ssid: a\n    password: abcdefgh\n", "listed twice"},
		{"country: GB\nwifi:\n  - ssid: a\n    password: \"pass\\u00e9word\"\n", "printable ASCII"},
		{"ethernet:\n  address: 10.0.0.5\n", "ethernet.address"},
		{"ethernet:\n  address: 10.0.0.0/24\n", "a network, not a host"},
		{"ethernet:\n  address: 10.0.0.5/24\n  gateway: 10.0.1.1\n", "outside 10.0.0.0/24"},
		{"ethernet:\n  dns: [1.1.1.1]\n", "ethernet.address: missing"},
		{"ethernet:\n  address: 10.0.0.5/24\n  dns: [one]\n", "ethernet.dns[0]"},
		{"ethernet:\n  interface: eth0;rm\n", "ethernet.interface"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.yaml, err, c.want)
		}
	}
	// Every error at once, each with its field.
	_, err := Parse([]byte("country: GB\nwifi:\n  - ssid: a\n  - ssid: b\n    password: x\n"))
	if err == nil || !strings.Contains(err.Error(), "wifi[0].password") || !strings.Contains(err.Error(), "wifi[1].password") {
		t.Errorf("two bad networks: %v", err)
	}
}

// NetworkManager's own keyfile reader reads the files as meant: nmcli
// --offline parses a keyfile on stdin and writes it back normalised. The
// test needs nmcli (network-manager); LABLOG_NMCLI may name it.
func TestKeyfilesReadByNetworkManager(t *testing.T) {
	nmcli := os.Getenv("LABLOG_NMCLI")
	if nmcli == "" {
		var err error
		if nmcli, err = exec.LookPath("nmcli"); err != nil {
			t.Skip("no nmcli (network-manager) on PATH, LABLOG_NMCLI not set")
		}
	}
	s, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Keyfiles() {
		cmd := exec.Command(nmcli, "--offline", "connection", "modify", "connection.autoconnect", "yes")
		cmd.Stdin = strings.NewReader(f.Content)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: nmcli --offline refused it: %v\n%s", f.Name, err, f.Content)
		}
		ours, theirs := keyfile(t, f.Content), keyfile(t, string(out))
		for k, v := range ours {
			got := theirs[k]
			if k == "wifi.ssid" && strings.HasSuffix(v, ";") { // bytes: NetworkManager writes the text
				var b []byte
				for _, n := range strings.Split(strings.TrimSuffix(v, ";"), ";") {
					c, _ := strconv.Atoi(n)
					b = append(b, byte(c))
				}
				v, got = string(b), strings.ReplaceAll(got, `\;`, ";")
			}
			if got != v {
				t.Errorf("%s: NetworkManager reads %s = %q, we wrote %q", f.Name, k, got, v)
			}
		}
	}
}

// The redacted copy keeps every setting but the passwords, and reads back
// as the same networks.
func TestRedacted(t *testing.T) {
	s, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"correct horse battery", "leading space", "password"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted copy holds %q:\n%s", secret, out)
		}
	}
	if s.Wifi[0].Password != "correct horse battery" {
		t.Errorf("Redacted changed the settings it was called on")
	}
	var back Settings
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(back.Wifi) != 2 || back.Wifi[1].SSID != "Spare AP; 2nd floor" || !back.Wifi[1].Hidden ||
		back.Wifi[0].Security != "wpa2" || back.Country != "GB" || back.Ethernet == nil || back.Ethernet.Address != "10.1.2.3/16" {
		t.Errorf("redacted copy reads back as %+v:\n%s", back, out)
	}
}
