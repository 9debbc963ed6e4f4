package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/record/privacy"
)

// With pseudonymised data, lablog subject looks for the pseudonym of the
// id it is given; without, for the id itself; a missing key is an error,
// never a search for the wrong id.
func TestStoredID(t *testing.T) {
	cfg := config.Default()
	if id, err := storedID(cfg, "alice"); err != nil || id != "alice" {
		t.Errorf("plain: %q %v", id, err)
	}
	cfg.Privacy.Pseudonymise = true
	cfg.Privacy.KeyFile = filepath.Join(t.TempDir(), "pseudonym-key")
	if _, err := storedID(cfg, "alice"); err == nil {
		t.Error("no key: no error")
	}
	key, _, err := privacy.LoadKey(cfg.Privacy.KeyFile, true)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := storedID(cfg, "alice"); err != nil || id != privacy.New(key).ID("alice") || id == "alice" {
		t.Errorf("pseudonymised: %q %v", id, err)
	}
	if _, err := os.Stat(cfg.Privacy.KeyFile); err != nil {
		t.Fatal(err)
	}
}
