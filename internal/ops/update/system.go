package update

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Dpkg is the Installer of a Debian system.
type Dpkg struct{}

func command(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, lastLines(string(out), 6))
	}
	return out, nil
}

// lastLines keeps the end of a command's output for an error message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func (Dpkg) Inspect(ctx context.Context, deb string) (Package, error) {
	out, err := command(ctx, "dpkg-deb", "--show", "--showformat", "${Package} ${Version} ${Architecture}", deb)
	if err != nil {
		return Package{}, err
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return Package{}, fmt.Errorf("dpkg-deb --show %s: %q", deb, out)
	}
	return Package{Name: f[0], Version: f[1], Arch: f[2]}, nil
}

func (Dpkg) Installed(ctx context.Context) (Package, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${db:Status-Status} ${Version} ${Architecture}", PackageName).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 3 || f[0] != "installed" {
		// Not installed (or half: then reinstalling is what is wanted).
		return Package{Name: PackageName}, nil
	}
	return Package{Name: PackageName, Version: f[1], Arch: f[2]}, nil
}

func (Dpkg) Install(ctx context.Context, deb string) error {
	// The admin's lablog.yaml is kept, as by apt on an upgrade.
	_, err := command(ctx, "dpkg", "--force-confold", "--force-confdef", "-i", deb)
	return err
}

// Systemd is the Prober of a machine where lablog runs as lablog.service.
type Systemd struct {
	// Binary is the installed lablog, which must run (`version`).
	Binary string
	// Healthz is the URL of the installed lablog's /healthz; "" when its
	// status server is off: then running is all that can be known.
	Healthz string
	Unit    string
}

// HealthzURL is the /healthz of a status server listening on listen
// (config status.listen: ":80", "0.0.0.0:80", "127.0.0.1:8080"), asked on
// loopback.
func HealthzURL(listen string) string {
	if listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}

func (s Systemd) Restart(ctx context.Context) error {
	if _, err := command(ctx, s.Binary, "version"); err != nil {
		return fmt.Errorf("the installed lablog does not run: %w", err)
	}
	if _, err := command(ctx, "systemctl", "restart", s.Unit); err != nil {
		return err
	}
	return nil
}

func (s Systemd) Probe(ctx context.Context) Health {
	// What systemd does with the unit, when it can say: its restarts, and
	// whether it is stopped with nothing starting it again (inactive after
	// a start that a condition skipped, failed once systemd gives up).
	unit, _ := s.show(ctx)
	restarts, _ := strconv.Atoi(unit["NRestarts"])
	if err := exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", s.Unit).Run(); err == nil {
		h := s.probeHealthz(ctx)
		h.Restarts = restarts
		return h
	}
	h := Health{Restarts: restarts}
	if active := unit["ActiveState"]; active != "" {
		h.Reason = fmt.Sprintf("%s is %s (%s, result %s)", s.Unit, active, unit["SubState"], unit["Result"])
		h.Stopped = active == "inactive" || active == "failed"
	} else {
		state, _ := exec.CommandContext(ctx, "systemctl", "is-active", s.Unit).Output()
		h.Reason = fmt.Sprintf("%s is not active (%s)", s.Unit, strings.TrimSpace(string(state)))
	}
	return h
}

// show reads the unit's state from systemd.
func (s Systemd) show(ctx context.Context) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "systemctl", "show", "--property=ActiveState,SubState,Result,NRestarts", s.Unit).Output()
	if err != nil {
		return nil, fmt.Errorf("systemctl show %s: %w", s.Unit, err)
	}
	unit := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			unit[k] = v
		}
	}
	return unit, nil
}

// probeHealthz looks at the running service's /healthz.
func (s Systemd) probeHealthz(ctx context.Context) Health {
	if s.Healthz == "" {
		return Health{Running: true, Recording: true, Reason: "no status server: running is all that is checked"}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Healthz, nil)
	if err != nil {
		return Health{Reason: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Health{Reason: fmt.Sprintf("%s does not answer: %v", s.Healthz, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	first := ""
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && l != "not recording" && l != "recording" {
			first = l
			break
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return Health{Running: true, Recording: true}
	case http.StatusServiceUnavailable:
		return Health{Running: true, Reason: "/healthz 503 not recording: " + first}
	}
	return Health{Reason: fmt.Sprintf("%s answered %s", s.Healthz, resp.Status)}
}
