package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/practable/lablog/internal/record/buffer"
)

// Every command's --help succeeds, prints its usage with its flags to
// stdout, and an unknown flag fails with that usage on stderr.
func TestEveryCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		cmd   []string
		flags []string // each must appear in the help
	}{
		{[]string{"run"}, []string{"-config", "-debug"}},
		{[]string{"demo"}, []string{"-dir", "-duration", "-streams", "-rate", "-listen"}},
		{[]string{"simlab"}, []string{"-listen", "-streams", "-rate"}},
		{[]string{"head"}, []string{"-n", "FILE|DIR"}},
		{[]string{"compact"}, []string{"-config", "-open-hours"}},
		{[]string{"verify"}, []string{"DIR", "Parquet"}},
		{[]string{"pseudonym"}, []string{"-config", "ID...", "never makes"}},
		{[]string{"salvage"}, []string{"-config", "QUARANTINED"}},
		{[]string{"bench"}, []string{"-runs", "-duration", "-quick", "-only", "-binary", "-exec"}},
		{[]string{"config", "check"}, []string{"FILE", "line number"}},
		{[]string{"config", "example"}, []string{"default"}},
		{[]string{"config", "network"}, []string{"FILE DIR", "0600"}},
		{[]string{"tokens"}, []string{"-secret-file", "-access", "-streams", "-lifetime", "-out", "-write"}},
		{[]string{"install"}, []string{"-config", "-print", "-root", "-exec", "-user"}},
		{[]string{"uninstall"}, []string{"-root"}},
		{[]string{"start"}, []string{"Start"}},
		{[]string{"stop"}, []string{"Stop"}},
		{[]string{"status"}, []string{"-config"}},
		{[]string{"drive", "init"}, []string{"-yes", "-user", "DEVICE"}},
		{[]string{"drive", "mark"}, []string{"DIR", ".lablog-archive"}},
		{[]string{"fleet"}, []string{"-config", "-site", "-json", "gaps"}},
		{[]string{"merge"}, []string{"-config", "-date", "-part-rows", "compacted/date="}},
		{[]string{"version"}, []string{"version", "-buffer-format"}},
		{[]string{"subject", "export"}, []string{"-user", "-out", "-config", "-archive", "-buffer", "-bucket", "-site"}},
		{[]string{"subject", "erase"}, []string{"-user", "-config", "-bucket", "tombstone", "stopped"}},
		{[]string{"subject", "verify-report"}, []string{"-key", "REPORT"}},
		{[]string{"update", "keygen"}, []string{"-out", "-comment"}},
		{[]string{"update", "sign"}, []string{"-key", "FILE.sig"}},
		{[]string{"update", "verify"}, []string{"-keys"}},
		{[]string{"update", "apply"}, []string{"-config", "-keys", "-keep", "-timeout", "-no-rollback", "/healthz"}},
		{[]string{"update", "boot"}, []string{"-from", "-keep", "lablog/update"}},
		{[]string{"update", "keep"}, []string{"-keep"}},
	} {
		name := strings.Join(tc.cmd, " ")
		for _, help := range []string{"--help", "-h"} {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append(append([]string{}, tc.cmd...), help), &stdout, &stderr)
			if err != nil || stderr.Len() > 0 {
				t.Errorf("%s %s: %v, stderr %q", name, help, err, stderr.String())
			}
			out := stdout.String()
			if !strings.HasPrefix(out, "Usage: lablog "+name) {
				t.Errorf("%s %s: help does not start with its usage:\n%s", name, help, out)
			}
			for _, f := range tc.flags {
				if !strings.Contains(out, f) {
					t.Errorf("%s %s: help lacks %q:\n%s", name, help, f, out)
				}
			}
		}
		// lablog help CMD says the same.
		var stdout bytes.Buffer
		if err := run(context.Background(), []string{"help", tc.cmd[0]}, &stdout, &stdout); err != nil || !strings.Contains(stdout.String(), "Usage: lablog "+tc.cmd[0]) {
			t.Errorf("help %s: %v %q", tc.cmd[0], err, stdout.String())
		}
		var stderr bytes.Buffer
		stdout.Reset()
		err := run(context.Background(), append(append([]string{}, tc.cmd...), "--no-such-flag"), &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "-no-such-flag") ||
			!strings.Contains(stderr.String(), "Usage: lablog "+name) || stdout.Len() > 0 {
			t.Errorf("%s --no-such-flag: %v, stdout %q, stderr %q", name, err, stdout.String(), stderr.String())
		}
	}
}

// The top-level help names every command and flag a user may need.
func TestTopLevelHelp(t *testing.T) {
	out, err := runCmd(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"run [--config FILE] [--debug]", "--rate", "simlab", "head", "--exec BIN", "--user lablog",
		"status [--config FILE]", "drive init [--yes] [--user lablog] DEVICE", "drive mark DIR", "help COMMAND"} {
		if !strings.Contains(out, want) {
			t.Errorf("lablog --help lacks %q", want)
		}
	}
}

// Wrong arguments (not flags) fail with the command's usage.
func TestUsageProblems(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify"}, "want one folder"},
		{[]string{"config", "check"}, "want one file"},
		{[]string{"config"}, "Usage: lablog config check FILE"},
		{[]string{"config", "frob"}, `unknown command "frob"`},
		{[]string{"config", "network", "network.yaml"}, "want FILE and DIR"},
		{[]string{"drive"}, "Usage: lablog drive init"},
		{[]string{"drive", "init"}, "want one device"},
		{[]string{"drive", "mark"}, "want one folder"},
		{[]string{"tokens"}, "--secret-file, --access, --streams required"},
		{[]string{"tokens", "--secret-file", "x", "--access", "https://r"}, "--streams required"},
		{[]string{"head"}, "want one file or folder"},
	} {
		out, err := runCmd(t, tc.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v %q, want a usage error with %q", tc.args, err, out, tc.want)
		}
	}
	// config check --help is help, not a file name.
	if out, err := runCmd(t, "config", "check", "--help"); err != nil || strings.Contains(out, "no such file") {
		t.Errorf("config check --help: %v %q", err, out)
	}
}

// install --print works on a machine without a configuration file.
func TestInstallPrintWithoutConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	missing := filepath.Join(t.TempDir(), "lablog.yaml")
	err := run(context.Background(), []string{"install", "--print", "--config", missing, "--exec", "/usr/local/bin/lablog"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v %s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "ExecStart=/usr/local/bin/lablog run --config "+missing) {
		t.Errorf("unit:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "printing the unit for the default configuration") {
		t.Errorf("it does not say it used the defaults: %q", stderr.String())
	}
	// Installing for real still needs the file.
	if err := run(context.Background(), []string{"install", "--root", t.TempDir(), "--config", "/etc/lablog/lablog.yaml"}, &stdout, &stderr); err == nil {
		t.Error("install without a configuration file succeeded")
	}
}

// The real binary's exit codes: 0 for help, 2 for a usage error, 1 for a
// failure.
func TestExitCodes(t *testing.T) {
	bin, err := filepath.Abs("../../dist/lablog")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("dist/lablog not built (make build)")
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, 0},
		{[]string{"verify", "--help"}, 0},
		{[]string{"config", "check", "--help"}, 0},
		{[]string{"verify", "--bogus"}, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"verify", t.TempDir()}, 1},
	} {
		err := exec.Command(bin, tc.args...).Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("lablog %v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}

// version --buffer-format is the number the Debian package's preinst
// compares: the buffer package's, alone on its line.
func TestVersionBufferFormat(t *testing.T) {
	out, err := runCmd(t, "version", "--buffer-format")
	if err != nil || out != fmt.Sprintf("%d\n", buffer.FormatVersion) {
		t.Errorf("version --buffer-format = %q, %v; want %d and a newline", out, err, buffer.FormatVersion)
	}
}

func TestExitStatus(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errUsage, exitUsage},
		{fmt.Errorf("compact: %w", doneWithProblems("3 records set aside")), exitProblems},
		{errors.New("disk on fire"), exitFailed},
	}
	for _, c := range cases {
		if got := exitStatus(c.err); got != c.want {
			t.Errorf("exitStatus(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
