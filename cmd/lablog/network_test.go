package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lablog config network writes the keyfiles and the country, owner-only;
// a bad file writes nothing and names the field.
func TestConfigNetwork(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "network.yaml")
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	yaml := "country: GB\nwifi:\n  - ssid: LabNet\n    password: \"correct horse\"\nethernet:\n  address: 10.1.2.3/24\n  gateway: 10.1.2.1\n"
	if err := os.WriteFile(src, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	clean := filepath.Join(dir, "network-imported.yaml")
	msg, err := runCmd(t, "config", "network", "--redacted", clean, src, out)
	if err != nil || !strings.Contains(msg, "2 connections (lablog-wifi-LabNet lablog-ethernet), Wi-Fi country GB") {
		t.Fatalf("config network: %v %q", err, msg)
	}
	// The copy for the card names the network but holds no password.
	if data, err := os.ReadFile(clean); err != nil || strings.Contains(string(data), "correct horse") ||
		!strings.Contains(string(data), "ssid: LabNet") || !strings.Contains(string(data), "address: 10.1.2.3/24") {
		t.Errorf("--redacted wrote %q (%v)", data, err)
	}
	for name, want := range map[string]string{
		"lablog-wifi-LabNet.nmconnection": "psk=correct horse\n",
		"lablog-ethernet.nmconnection":    "address1=10.1.2.3/24,10.1.2.1\n",
		"wifi-country":                    "GB\n",
	} {
		p := filepath.Join(out, name)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(p)
		if st.Mode().Perm() != 0o600 || !strings.Contains(string(data), want) {
			t.Errorf("%s: mode %04o, content %q, want %q in it", name, st.Mode().Perm(), data, want)
		}
	}

	bad := t.TempDir()
	if err := os.WriteFile(src, []byte("country: GB\nwifi:\n  - ssid: LabNet\n    password: short\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	msg, err = runCmd(t, "config", "network", "--redacted", filepath.Join(bad, "clean.yaml"), src, bad)
	if err == nil || !strings.Contains(err.Error(), "wifi[0].password") {
		t.Errorf("a short password: %v %q", err, msg)
	}
	if left, _ := os.ReadDir(bad); len(left) != 0 {
		t.Errorf("a bad network.yaml wrote %d files", len(left))
	}
}
