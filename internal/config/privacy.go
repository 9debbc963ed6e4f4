package config

// Privacy configures what lablog keeps of who the students are.
type Privacy struct {
	// Pseudonymise replaces every user id by a keyed HMAC of it at ingest
	// (internal/record/privacy), so the raw id is kept nowhere. Off by default.
	Pseudonymise bool `yaml:"pseudonymise"`
	// KeyFile holds the HMAC key as hex (mode 0600, never readable by
	// others); generated on the first start with pseudonymise on when it
	// is missing. A relative path is resolved against the config file's
	// directory.
	KeyFile string `yaml:"key_file"`
}

func defaultPrivacy() Privacy { return Privacy{KeyFile: "pseudonym-key"} }

func (c Config) validatePrivacy(add func(field, format string, args ...any)) {
	if c.Privacy.Pseudonymise && c.Privacy.KeyFile == "" {
		add("privacy.key_file", "must not be empty with pseudonymise on: it holds the key")
	}
}
