package main

import (
	"fmt"
	"io"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/record/privacy"
)

// cmdPseudonym prints the pseudonyms of user ids, as lablog run stores
// them with privacy.pseudonymise on: what to look for when a student asks
// for their data or its erasure.
func cmdPseudonym(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pseudonym", "[--config FILE] ID...",
		"Print the pseudonym lablog stores for each user ID (one a line, in order), hashed\n"+
			"with the key of the configuration's privacy section, which must exist: this\n"+
			"command never makes one. docs/privacy.md.")
	path := fs.String("config", defaultConfig, "configuration `file`")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(fs, stderr, "want at least one user ID")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if !cfg.Privacy.Pseudonymise {
		return fmt.Errorf("pseudonym: %s does not pseudonymise (privacy.pseudonymise is off): its data holds the ids as they are", *path)
	}
	key, _, err := privacy.LoadKey(cfg.Privacy.KeyFile, false)
	if err != nil {
		return fmt.Errorf("pseudonym: %w", err)
	}
	p := privacy.New(key)
	for _, id := range fs.Args() {
		fmt.Fprintln(stdout, p.ID(id))
	}
	return nil
}

// storedID is the id cfg's data holds for a user: their pseudonym when
// privacy.pseudonymise is on, else the id itself.
func storedID(cfg config.Config, id string) (string, error) {
	if !cfg.Privacy.Pseudonymise {
		return id, nil
	}
	key, _, err := privacy.LoadKey(cfg.Privacy.KeyFile, false)
	if err != nil {
		return "", fmt.Errorf("privacy.pseudonymise is on, and the key to find the user's pseudonym: %w", err)
	}
	return privacy.New(key).ID(id), nil
}
