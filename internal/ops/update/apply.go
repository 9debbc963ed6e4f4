package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/platform/atomicfile"
)

// Package is a Debian package's identity.
type Package struct{ Name, Version, Arch string }

// FileName is the package's file name as Debian names it (an epoch's colon
// is left out, as apt does with %3a; lablog has no epoch).
func (p Package) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), p.Arch)
}

// Installer is the package manager (dpkg on a real machine).
type Installer interface {
	// Inspect reads a package file's identity.
	Inspect(ctx context.Context, deb string) (Package, error)
	// Installed is lablog's installed package; Version "" when none.
	Installed(ctx context.Context) (Package, error)
	// Install installs a package file, replacing the installed one.
	Install(ctx context.Context, deb string) error
}

// Health is one look at the service.
type Health struct {
	Running   bool   // it runs and answers (its /healthz, when it serves one)
	Recording bool   // /healthz said 200
	Reason    string // why not, in words
	// Restarts counts the service's automatic restarts so far (systemd's
	// NRestarts): a version whose process keeps exiting shows here.
	Restarts int
	// Stopped: the service is not running and systemd is not starting it
	// (inactive or failed); it stays so unless something starts it.
	Stopped bool
}

// level orders healths: 0 not running, 1 running, 2 recording.
func (h Health) level() int {
	switch {
	case h.Recording:
		return 2
	case h.Running:
		return 1
	}
	return 0
}

var levelWords = []string{"running", "running", "recording (/healthz 200)"}

// Prober starts and looks at the installed lablog (systemd and /healthz
// on a real machine).
type Prober interface {
	// Restart makes the installed lablog the running one; an error
	// (the binary does not even run) fails the check at once.
	Restart(ctx context.Context) error
	Probe(ctx context.Context) Health
}

// Defaults of Options.
const (
	DefaultTimeout  = 90 * time.Second
	DefaultInterval = time.Second
	// CrashLoop is how many automatic restarts during the wait fail the
	// check before Timeout: a version that exits on its own three times
	// will not record, and every second waiting for it records nothing.
	CrashLoop = 3
	// DefaultStoppedFor is how long the service may stay stopped (systemd
	// neither running nor starting it) before the check fails: longer
	// than a RestartSec, so that an automatic restart under way is not
	// taken for the end.
	DefaultStoppedFor = 5 * time.Second
	// PackageName is the only package lablog update installs.
	PackageName = "lablog"
)

// Options configure Apply. Keys, Installer, Prober and KeepDir are required.
type Options struct {
	Keys      []PublicKey
	Installer Installer
	Prober    Prober
	// KeepDir holds the package of the installed version, to roll back to
	// (the last one that passed its health check).
	KeepDir string
	// Timeout bounds the wait for the new version to be healthy; default
	// DefaultTimeout. Interval is the time between looks. StoppedFor ends
	// the wait early once the service has stayed stopped that long;
	// default DefaultStoppedFor.
	Timeout, Interval, StoppedFor time.Duration
	// NoRollback installs even when no package of the installed version
	// is kept to roll back to.
	NoRollback bool
	// Report records a fault (fault.Store.Report); may be nil.
	Report func(kind fault.Kind, detail string, count int64)
	Logger *slog.Logger
}

// Outcome of Apply.
type Outcome string

const (
	Installed        Outcome = "installed"
	AlreadyInstalled Outcome = "already installed"
	Refused          Outcome = "refused"
	RolledBack       Outcome = "rolled back"
	Failed           Outcome = "failed"
)

// Result says what Apply did.
type Result struct {
	Outcome  Outcome
	From, To Package
	Reason   string // of a refusal, a rollback or a failure
}

// ErrRefused wraps an update not installed because it is not trusted (or
// not lablog's); ErrRolledBack one installed, unhealthy and undone.
var (
	ErrRefused    = errors.New("update refused")
	ErrRolledBack = errors.New("update rolled back")
)

// Apply installs the signed package deb and checks the new version: within
// Timeout it must run and be at least as healthy as the version it
// replaces was just before (recording if that one was). If it is not, the
// kept package of the previous version is installed again, and a fault
// says why. A good update becomes the kept package.
func Apply(ctx context.Context, deb string, o Options) (Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.StoppedFor <= 0 {
		o.StoppedFor = DefaultStoppedFor
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	report := func(kind fault.Kind, detail string) {
		if o.Report != nil {
			o.Report(kind, detail, 1)
		}
	}
	name := filepath.Base(deb)
	refused := func(reason string) (Result, error) {
		report(fault.UpdateRefused, name+": "+reason)
		o.Logger.Error("update refused", "file", deb, "reason", reason)
		return Result{Outcome: Refused, Reason: reason}, fmt.Errorf("%w: %s: %s", ErrRefused, name, reason)
	}

	key, err := VerifyFile(o.Keys, deb)
	if isRefusal(err) {
		return refused(err.Error())
	}
	if err != nil {
		return Result{Outcome: Failed, Reason: err.Error()}, fmt.Errorf("update %s: %w", name, err)
	}
	pkg, err := o.Installer.Inspect(ctx, deb)
	if err != nil {
		return refused(fmt.Sprintf("not a readable Debian package: %v", err))
	}
	if pkg.Name != PackageName {
		return refused(fmt.Sprintf("package %q, not %s", pkg.Name, PackageName))
	}
	cur, err := o.Installer.Installed(ctx)
	if err != nil {
		return Result{Outcome: Failed, Reason: err.Error()}, fmt.Errorf("update %s: installed lablog: %w", name, err)
	}
	res := Result{From: cur, To: pkg}
	if cur.Version != "" && cur.Arch != pkg.Arch {
		return refused(fmt.Sprintf("built for %s, this machine's lablog is %s", pkg.Arch, cur.Arch))
	}
	if cur.Version == pkg.Version {
		res.Outcome = AlreadyInstalled
		o.Logger.Info("update already installed", "file", deb, "version", pkg.Version)
		return res, nil
	}
	prev := ""
	if cur.Version != "" {
		prev = filepath.Join(o.KeepDir, cur.FileName())
		if _, err := os.Stat(prev); err != nil {
			if !o.NoRollback {
				res.Outcome, res.Reason = Failed, fmt.Sprintf("no copy of the installed lablog %s kept at %s to roll back to", cur.Version, prev)
				return res, fmt.Errorf("update %s: %s; keep one (lablog update keep FILE) or install without a way back (--no-rollback)", name, res.Reason)
			}
			prev = ""
		}
	}
	o.Logger.Info("update: installing", "file", deb, "key", key.ID, "from", cur.Version, "to", pkg.Version)

	before := o.Prober.Probe(ctx)
	want := before.level()
	reason := ""
	if err := o.Installer.Install(ctx, deb); err != nil {
		reason = fmt.Sprintf("install failed: %v", err)
	} else {
		reason = waitHealthy(ctx, o, want)
	}
	if reason == "" {
		if err := keep(deb, o.KeepDir, pkg); err != nil {
			// Installed and healthy: the update stands; only the way back
			// from the next one is missing, and the next one says so.
			o.Logger.Error("update installed, but not kept for a later rollback", "err", err)
		}
		res.Outcome = Installed
		o.Logger.Info("update installed and healthy", "version", pkg.Version, "health", levelWords[want])
		return res, nil
	}
	res.Reason = fmt.Sprintf("lablog %s failed its health check: %s", pkg.Version, reason)
	if prev == "" {
		res.Outcome = Failed
		report(fault.UpdateRolledBack, res.Reason+"; no previous package to roll back to")
		return res, fmt.Errorf("update %s: %s; no previous package was kept to roll back to", name, res.Reason)
	}
	o.Logger.Error("update unhealthy: rolling back", "version", pkg.Version, "reason", reason, "to", cur.Version)
	// Recorded before the rollback restarts lablog, which reads the record
	// as it starts (and would not see a later change).
	res.Reason += "; rolled back to " + cur.Version
	report(fault.UpdateRolledBack, res.Reason)
	back := ""
	if err := o.Installer.Install(ctx, prev); err != nil {
		back = fmt.Sprintf("; the rollback to %s failed too: %v", cur.Version, err)
	} else if r := waitHealthy(ctx, o, 0); r != "" {
		back = fmt.Sprintf("; after the rollback, %s does not run either: %s", cur.Version, r)
	}
	if back != "" {
		res.Reason += back
		report(fault.UpdateRolledBack, res.Reason)
	}
	res.Outcome = RolledBack
	return res, fmt.Errorf("%w: %s", ErrRolledBack, res.Reason)
}

// waitHealthy restarts lablog and waits for it to reach level want, and
// says why not ("" when it did).
func waitHealthy(ctx context.Context, o Options, want int) string {
	if err := o.Prober.Restart(ctx); err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	first := -1           // the restarts counted at the first look
	var stopped time.Time // since when the looks have found it stopped
	for {
		h := o.Prober.Probe(ctx)
		if h.level() >= want && (want == 0 || h.Running) {
			return ""
		}
		why := h.Reason
		if why == "" {
			why = "no reason given"
		}
		if first < 0 {
			first = h.Restarts
		} else if n := h.Restarts - first; n >= CrashLoop {
			return fmt.Sprintf("not %s: it exited and was restarted %d times (%s)", levelWords[want], n, why)
		}
		switch {
		case !h.Stopped:
			stopped = time.Time{}
		case stopped.IsZero():
			stopped = time.Now()
		case time.Since(stopped) >= o.StoppedFor:
			return fmt.Sprintf("not %s: stopped, and nothing starts it again (%s)", levelWords[want], why)
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("not %s within %v (%s)", levelWords[want], o.Timeout, why)
		case <-tick.C:
		}
	}
}

// keep makes deb the kept package (dir/NAME_VERSION_ARCH.deb) and removes
// the kept packages of other versions: written to a temporary file,
// synced and renamed, so a power cut leaves the old copy or the new one.
func keep(deb, dir string, pkg Package) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("keep package: %w", err)
	}
	dst := filepath.Join(dir, pkg.FileName())
	if err := copyFile(deb, dst); err != nil {
		return fmt.Errorf("keep package: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, PackageName+"_*.deb"))
	for _, p := range old {
		if p != dst {
			os.Remove(p)
		}
	}
	return nil
}

// Keep makes the package file deb the one to roll back to (lablog update
// keep): for a lablog installed otherwise than by Apply (the image's own,
// apt's).
func Keep(ctx context.Context, deb, dir string, inst Installer) (Package, error) {
	pkg, err := inst.Inspect(ctx, deb)
	if err != nil {
		return pkg, err
	}
	if pkg.Name != PackageName {
		return pkg, fmt.Errorf("%s is package %q, not %s", deb, pkg.Name, PackageName)
	}
	return pkg, keep(deb, dir, pkg)
}

// copyFile replaces dst with a copy of src, atomically and durably.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Commit()
}
