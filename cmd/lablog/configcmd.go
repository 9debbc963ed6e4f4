package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/practable/lablog/internal/cloud/forward"
	"github.com/practable/lablog/internal/cloud/upload"
	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/record/addlog"
)

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	const about = "lablog config check FILE | lablog config ready FILE | lablog config example | lablog config network FILE DIR"
	if len(args) == 0 || isHelp(args[0]) {
		w := stderr
		if len(args) > 0 {
			w = stdout
		}
		fmt.Fprintf(w, "Usage: %s\n\n  check FILE  validate a configuration file, and read its relay tokens\n  ready FILE  fail while FILE is still the example (the service's start condition)\n  example     print a commented example configuration with every default\n  network FILE DIR  write a network.yaml's NetworkManager keyfiles into DIR\n", about)
		if len(args) == 0 {
			return errUsage
		}
		return errHelp
	}
	switch args[0] {
	case "check":
		fs := newFlags("config check", "[--strict] FILE",
			"Validate a configuration file: unknown keys, bad values and bad stream names are\nerrors with their line number. Also reads every stream's relay token and warns\nabout streams that cannot work (missing or bad token files, example hosts, the\nexample file itself) and tokens that expire soon.")
		strict := fs.Bool("strict", false, "fail (exit 1) when there are warnings")
		file, err := parseOne(fs, args[1:], "file", stdout, stderr)
		if err != nil {
			return err
		}
		cfg, err := config.Load(file)
		if err != nil {
			return err
		}
		if cfg.Upload.Enabled() {
			// The daemon would record without uploading: refuse the file
			// here, where the last good one can stay in use.
			creds, err := upload.LoadCredentials(cfg.Upload.CredentialsFile)
			if err != nil {
				return err
			}
			defer fmt.Fprintf(stdout, "upload: %s at %s (%s)\n", wire.Upload(cfg).Target(), cfg.Upload.Endpoint, creds)
		}
		if cfg.AddLog.Enabled() {
			// Without its credentials the daemon would not start.
			creds, err := addlog.LoadCredentials(cfg.AddLog.CredentialsFile)
			if err != nil {
				return err
			}
			if fc := cfg.AddLog.Forward; fc.Enabled() {
				user, _, err := forward.LoadCredentials(fc.CredentialsFile)
				if err != nil {
					return err
				}
				defer fmt.Fprintf(stdout, "addlog forward: to %s as %s\n", fc.URL, user)
			}
			defer fmt.Fprintf(stdout, "addlog: %s, %d credentials, origins %s\n", cfg.AddLog.Listen, creds.Len(), strings.Join(cfg.AddLog.AllowedOrigins, " "))
		}
		fmt.Fprintf(stdout, "ok: %s: %d streams\n", file, len(cfg.Streams()))
		warnings := cfg.Warnings(file)
		for _, w := range warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		bad, shared := checkTokens(stdout, cfg)
		bad += len(warnings)
		if len(shared) > 0 {
			// Refused like the upload credentials: a secret others can read.
			return fmt.Errorf("config check: %w", errors.Join(shared...))
		}
		if *strict && bad > 0 {
			return fmt.Errorf("config check --strict: %s: %d warnings", file, bad)
		}
		return nil
	case "ready":
		fs := newFlags("config ready", "FILE",
			"Exit 1, saying why, while FILE is still the example configuration (example: true);\nexit 0 otherwise. The service's unit runs it as its ExecCondition, so an enabled\nlablog stays idle until its configuration is edited. A file that does not load\npasses here: lablog run reports it.")
		file, err := parseOne(fs, args[1:], "file", stdout, stderr)
		if err != nil {
			return err
		}
		cfg, err := config.Load(file)
		if err != nil {
			return nil
		}
		return cfg.NotReady(file)
	case "network":
		return cmdConfigNetwork(args[1:], stdout, stderr)
	case "example":
		fs := newFlags("config example", "", "Print a commented example configuration with every key and its default.")
		if err := parseFlags(fs, args[1:], stdout, stderr); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usageError(fs, stderr, "takes no arguments")
		}
		_, err := stdout.Write(config.Example())
		return err
	}
	fmt.Fprintf(stderr, "lablog config: unknown command %q\nusage: %s\n", args[0], about)
	return errUsage
}
