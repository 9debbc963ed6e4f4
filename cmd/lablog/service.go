package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/service"
	"github.com/practable/lablog/internal/platform/httpserve"
)

// newManager and newControl are variables so tests can point them at a temp
// root and a fake systemctl.
var (
	newManager = func(root string, log *slog.Logger) *service.Manager {
		return &service.Manager{Root: root, Logger: log}
	}
	newControl = service.NewControl
)

// cmdInstall installs lablog as a systemd service using our unit template.
func cmdInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlags("install", "[--config FILE] [--print] [--root DIR] [--exec BIN] [--user lablog]",
		"Install lablog as a systemd service running `lablog run --config FILE` as a dedicated\nuser, and enable it. --print shows the unit instead (without FILE, for the defaults).")
	cfgPath := flags.String("config", defaultConfig, "configuration `file` the service will use")
	print := flags.Bool("print", false, "print the unit file and install nothing")
	root := flags.String("root", "/", "install into this root `folder` (an image being built) instead of this system")
	exe := flags.String("exec", "", "lablog binary the service runs (default: this binary; /usr/local/bin/lablog with --root)")
	user := flags.String("user", service.DefaultUser, "dedicated `user` the service runs as (created if missing)")
	if err := parseFlags(flags, args, stdout, stderr); err != nil {
		return err
	}
	live := filepath.Clean(*root) == "/"
	path := *cfgPath
	if live {
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("install: %w", err)
		}
		path = abs
	} else if !filepath.IsAbs(path) {
		return fmt.Errorf("install: with --root, --config must be the absolute path inside the image")
	}
	cfg, err := config.Load(filepath.Join(*root, path))
	if *print && errors.Is(err, fs.ErrNotExist) {
		// Showing the unit needs no configuration: its paths are the defaults.
		fmt.Fprintf(stderr, "lablog install: %s does not exist; printing the unit for the default configuration\n", path)
		cfg, err = config.Default(), nil
	}
	if err != nil {
		return err
	}
	if !live {
		// Load resolved relative paths on this system; the unit needs them
		// as the image will see them.
		cfg.Buffer.Path = strings.TrimPrefix(cfg.Buffer.Path, filepath.Clean(*root))
		cfg.Archive.Path = strings.TrimPrefix(cfg.Archive.Path, filepath.Clean(*root))
	}
	bin := *exe
	switch {
	case bin != "":
	case live:
		if bin, err = os.Executable(); err == nil {
			bin, err = filepath.EvalSymlinks(bin)
		}
		if err != nil {
			return fmt.Errorf("install: cannot tell where this binary is (use --exec): %w", err)
		}
	default:
		bin = "/usr/local/bin/lablog"
	}
	unit := wire.ServiceUnit(bin, path, cfg)
	unit.User = *user
	if *print {
		text, err := unit.Render()
		if err != nil {
			return err
		}
		_, err = stdout.Write(text)
		return err
	}
	m := newManager(*root, newLogger(stderr, slog.LevelInfo))
	if err := m.Install(ctx, unit); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed and enabled %s (runs %s as user %s)\n", m.UnitPath(), bin, unit.User)
	if live {
		fmt.Fprintln(stdout, "start it now with: lablog start")
	}
	return nil
}

func cmdUninstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("uninstall", "[--root DIR]",
		"Stop, disable and remove the service. The buffer, the archive and the user are kept.")
	root := fs.String("root", "/", "uninstall from this root `folder` instead of this system")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	m := newManager(*root, newLogger(stderr, slog.LevelInfo))
	if err := m.Uninstall(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stopped, disabled and removed %s; the buffer, the archive and the user are kept\n", m.UnitPath())
	return nil
}

// cmdControl runs start or stop.
func cmdControl(op string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(op, "", map[string]string{"start": "Start the installed service (systemctl start lablog).",
		"stop": "Stop the installed service; it commits what it has queued first."}[op])
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	c, err := newControl()
	if err != nil {
		return err
	}
	if op == "start" {
		err = c.Start()
	} else {
		err = c.Stop()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lablog service: %s\n", map[string]string{"start": "started", "stop": "stopped"}[op])
	return nil
}

// cmdStatus says whether the service runs and, if it does, what its
// status server says about recording.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "[--config FILE]",
		"Say whether the service runs and, if it does, what its status server's /healthz says\n(found through the configuration's status.listen).")
	cfgPath := fs.String("config", defaultConfig, "configuration `file`, to find the status server")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	c, err := newControl()
	if err != nil {
		return err
	}
	state, err := c.Status()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lablog service: %s\n", state)
	cfg, err := config.Load(*cfgPath)
	if state != "running" {
		if err == nil && cfg.NotReady(*cfgPath) != nil {
			fmt.Fprintf(stdout, "not started: %v\n", cfg.NotReady(*cfgPath))
		}
		return nil
	}
	if err != nil || cfg.Status.Listen == "" {
		return nil
	}
	url := "http://" + httpserve.LocalAddr(cfg.Status.Listen) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stdout, "status server %s: %v\n", url, err)
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s", body)
	return nil
}
