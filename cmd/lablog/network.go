package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/practable/lablog/internal/ops/netconf"
)

// cmdConfigNetwork converts a boot partition's lablog/network.yaml into
// NetworkManager keyfiles (lablog-import-config runs it at boot).
func cmdConfigNetwork(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config network", "FILE DIR",
		"Check FILE, a network.yaml (Wi-Fi networks, a static address), and write its\n"+
			"NetworkManager keyfiles lablog-*.nmconnection into DIR, mode 0600, with the\n"+
			"Wi-Fi country in DIR/wifi-country. Nothing is written when FILE has an error.")
	redacted := fs.String("redacted", "", "also write the settings without their passwords to this `file` (the\n"+
		"boot-time import leaves it on the card in place of FILE)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError(fs, stderr, "want FILE and DIR, got %d arguments", fs.NArg())
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("config network: %w", err)
	}
	s, err := netconf.Parse(data)
	if err != nil {
		return fmt.Errorf("config network: %s: %w", fs.Arg(0), err)
	}
	var clean []byte
	if *redacted != "" {
		body, err := s.Redacted()
		if err != nil {
			return fmt.Errorf("config network: %w", err)
		}
		clean = append([]byte("# The network settings lablog imported into NetworkManager, without their\n"+
			"# passwords. To change them, write a new network.yaml (with passwords).\n"), body...)
	}
	dir := fs.Arg(1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config network: %w", err)
	}
	var names []string
	for _, k := range s.Keyfiles() {
		if err := writeSecret(filepath.Join(dir, k.Name), k.Content); err != nil {
			return fmt.Errorf("config network: %w", err)
		}
		names = append(names, strings.TrimSuffix(k.Name, ".nmconnection"))
	}
	if s.Country != "" {
		if err := writeSecret(filepath.Join(dir, "wifi-country"), s.Country+"\n"); err != nil {
			return fmt.Errorf("config network: %w", err)
		}
	}
	if *redacted != "" {
		if err := writeSecret(*redacted, string(clean)); err != nil {
			return fmt.Errorf("config network: %w", err)
		}
	}
	fmt.Fprintf(stdout, "%d connections (%s)", len(names), strings.Join(names, " "))
	if s.Country != "" {
		fmt.Fprintf(stdout, ", Wi-Fi country %s", s.Country)
	}
	fmt.Fprintln(stdout)
	return nil
}

// writeSecret writes a file only its owner may read (keyfiles hold Wi-Fi
// passwords; NetworkManager ignores a keyfile others can read) and syncs it.
func writeSecret(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
