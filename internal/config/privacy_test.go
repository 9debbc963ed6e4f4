package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPrivacy(t *testing.T) {
	if c := mustParse(t, oneStream); c.Privacy.Pseudonymise || c.Privacy.KeyFile != "pseudonym-key" {
		t.Errorf("default privacy %+v", c.Privacy)
	}
	if got, want := parseErr(t, "privacy:\n  pseudonymise: true\n  key_file: \"\"\n"+oneStream),
		"lablog.yaml:3: privacy.key_file: must not be empty with pseudonymise on: it holds the key"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "lablog.yaml")
	if err := os.WriteFile(file, []byte("privacy: {pseudonymise: true}\n"+oneStream), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "pseudonym-key"); c.Privacy.KeyFile != want {
		t.Errorf("key_file = %q, want %q beside the config", c.Privacy.KeyFile, want)
	}
}

func TestArchiveKeepDays(t *testing.T) {
	if c := mustParse(t, oneStream); c.Archive.KeepDays != 0 {
		t.Errorf("default keep_days %d, want 0 (keep forever)", c.Archive.KeepDays)
	}
	if got, want := parseErr(t, "archive:\n  keep_days: -1\n"+oneStream),
		"lablog.yaml:2: archive.keep_days: must be 0 (keep forever) or a number of days, got -1"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
