package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	kservice "github.com/kardianos/service"

	"github.com/practable/lablog/internal/platform/atomicfile"
	"github.com/practable/lablog/internal/platform/logkey"
)

// Runner runs a command and returns its combined output. Tests inject one
// that records the calls.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs commands for real, found on PATH.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Manager installs, removes and controls the service.
//
// Installing writes our unit file itself, because kardianos/service can
// write only to /etc/systemd/system of the running system and refuses to
// replace an existing unit, while an image build installs into another root
// and a changed config needs a reinstall. Start, stop and status go through
// kardianos/service's systemd backend.
type Manager struct {
	// Root is the system to install into: "" or "/" for this one, or the
	// root folder of an image being built (then systemctl works offline,
	// with --root, and nothing is started).
	Root string
	// UnitDir is where units go inside Root; default /etc/systemd/system.
	UnitDir string
	Run     Runner // default ExecRunner
	Logger  *slog.Logger
}

func (m *Manager) defaults() {
	if m.Root == "" {
		m.Root = "/"
	}
	if m.UnitDir == "" {
		m.UnitDir = "/etc/systemd/system"
	}
	if m.Run == nil {
		m.Run = ExecRunner
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
}

func (m *Manager) live() bool { return filepath.Clean(m.Root) == "/" }

// UnitPath is where the unit file is installed.
func (m *Manager) UnitPath() string {
	m.defaults()
	return filepath.Join(m.Root, m.UnitDir, Name+".service")
}

func (m *Manager) systemctl(ctx context.Context, args ...string) error {
	if !m.live() {
		args = append([]string{"--root=" + m.Root}, args...)
	}
	_, err := m.Run(ctx, "systemctl", args...)
	return err
}

// Install creates the service user if missing, writes the unit (replacing
// an older one) and enables it. It does not start it.
func (m *Manager) Install(ctx context.Context, u Unit) error {
	m.defaults()
	unit, err := u.Render()
	if err != nil {
		return err
	}
	user := u.User
	if user == "" {
		user = DefaultUser
	}
	if err := m.ensureUser(ctx, user); err != nil {
		return err
	}
	path := m.UnitPath()
	if err := writeFileAtomic(path, unit); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	m.Logger.Info("unit written", logkey.Path, path)
	if m.live() {
		if err := m.systemctl(ctx, "daemon-reload"); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	if err := m.systemctl(ctx, "enable", Name+".service"); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// ensureUser adds a system user with no login and no home of its own.
func (m *Manager) ensureUser(ctx context.Context, user string) error {
	var args []string
	if m.live() {
		if _, err := m.Run(ctx, "getent", "passwd", user); err == nil {
			return nil
		}
	} else {
		if hasUser(filepath.Join(m.Root, "etc/passwd"), user) {
			return nil
		}
		args = append(args, "--root", m.Root)
	}
	args = append(args, UserAddArgs(user)...)
	if _, err := m.Run(ctx, "useradd", args...); err != nil {
		return fmt.Errorf("install: create user %s: %w", user, err)
	}
	m.Logger.Info("user created", "user", user)
	return nil
}

// UserAddArgs are useradd's arguments that create the service user: a
// system user and group, no login, no home of its own. `lablog install` and
// the Debian package's postinst both use them.
func UserAddArgs(user string) []string {
	return []string{"--system", "--user-group", "--no-create-home",
		"--home-dir", "/var/lib/lablog", "--shell", "/usr/sbin/nologin", user}
}

func hasUser(passwd, user string) bool {
	data, err := os.ReadFile(passwd)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, user+":") {
			return true
		}
	}
	return false
}

// ErrNotInstalled is returned by Uninstall when there is no unit.
var ErrNotInstalled = errors.New("lablog service is not installed")

// Uninstall stops and disables the service and removes the unit. The user
// and the data (buffer, archive) are kept.
func (m *Manager) Uninstall(ctx context.Context) error {
	m.defaults()
	path := m.UnitPath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("uninstall: %w (no %s)", ErrNotInstalled, path)
	}
	args := []string{"disable", Name + ".service"}
	if m.live() {
		args = []string{"disable", "--now", Name + ".service"}
	}
	if err := m.systemctl(ctx, args...); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	if m.live() {
		if err := m.systemctl(ctx, "daemon-reload"); err != nil {
			return fmt.Errorf("uninstall: %w", err)
		}
	}
	m.Logger.Info("unit removed", logkey.Path, path)
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

// Control is the running service, through kardianos/service.
type Control struct{ svc kservice.Service }

// noProgram satisfies kardianos' Interface: lablog runs its own main loop
// (Type=notify) and never calls svc.Run.
type noProgram struct{}

func (noProgram) Start(kservice.Service) error { return nil }
func (noProgram) Stop(kservice.Service) error  { return nil }

// NewControl picks kardianos' systemd backend by name rather than by
// detection, which guesses wrong in containers and image chroots.
func NewControl() (*Control, error) {
	for _, sys := range kservice.AvailableSystems() {
		if sys.String() != "linux-systemd" {
			continue
		}
		svc, err := sys.New(noProgram{}, &kservice.Config{Name: Name, DisplayName: Name})
		if err != nil {
			return nil, fmt.Errorf("service: %w", err)
		}
		return &Control{svc: svc}, nil
	}
	return nil, errors.New("service: systemd is not supported on this platform")
}

// Start starts the service.
func (c *Control) Start() error { return wrap("start", c.svc.Start()) }

// Stop stops the service.
func (c *Control) Stop() error { return wrap("stop", c.svc.Stop()) }

// Status says whether the service runs: "running", "stopped" or
// "not installed".
func (c *Control) Status() (string, error) {
	st, err := c.svc.Status()
	switch {
	case errors.Is(err, kservice.ErrNotInstalled):
		return "not installed", nil
	case err != nil:
		return "", wrap("status", err)
	case st == kservice.StatusRunning:
		return "running", nil
	case st == kservice.StatusStopped:
		return "stopped", nil
	}
	return "unknown", nil
}

func wrap(op string, err error) error {
	if err != nil {
		return fmt.Errorf("service %s: %w", op, err)
	}
	return nil
}
