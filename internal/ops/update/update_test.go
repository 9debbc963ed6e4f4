package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/practable/lablog/internal/ops/fault"
)

// keyPair makes a key pair and writes the public half into dir.
func keyPair(t *testing.T, dir, name string) ([]byte, []byte) {
	t.Helper()
	pub, priv, err := GenerateKey(name + " test key")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signFile(t *testing.T, privText []byte, path string) {
	t.Helper()
	priv, err := ParsePrivateKey(privText)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(priv, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+SigSuffix, sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFormats(t *testing.T) {
	pub, priv, err := GenerateKey("  lab  fleet\tkey ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pub), publicTag+" ") || !strings.HasSuffix(string(pub), " lab fleet key\n") || bytes.Count(pub, []byte("\n")) != 1 {
		t.Errorf("public key file %q", pub)
	}
	k, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Public().(ed25519.PublicKey), k) {
		t.Error("the private key's public half is not the public key")
	}
	if _, err := ParsePublicKey(priv); err == nil || !strings.Contains(err.Error(), "a "+privateTag+", want a "+publicTag) {
		t.Errorf("a private key read as a public one: %v", err)
	}
	if _, err := ParsePublicKey([]byte("ssh-ed25519 AAAA")); err == nil || !strings.Contains(err.Error(), "not a lablog update key") {
		t.Errorf("an ssh key read as an update key: %v", err)
	}
	if _, err := ParsePrivateKey([]byte(privateTag + " c2hvcnQ=")); err == nil {
		t.Error("a short private key was accepted")
	}
}

func TestSignVerify(t *testing.T) {
	dir := t.TempDir()
	_, priv := keyPair(t, filepath.Join(dir, "keys"), "fleet")
	_, other := keyPair(t, filepath.Join(dir, "other"), "other")
	keys, err := LoadKeys(filepath.Join(dir, "keys"), filepath.Join(dir, "missing"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("LoadKeys: %v %v", keys, err)
	}
	deb := filepath.Join(dir, "lablog_1.1_arm64.deb")
	os.WriteFile(deb, []byte("package bytes"), 0o644)

	if _, err := VerifyFile(keys, deb); !errors.Is(err, ErrNoSignature) || !strings.Contains(err.Error(), "lablog_1.1_arm64.deb.sig") {
		t.Errorf("no signature: %v", err)
	}
	signFile(t, priv, deb)
	if k, err := VerifyFile(keys, deb); err != nil || k.ID != keys[0].ID {
		t.Fatalf("a good signature: %v %v", k, err)
	}
	// Renamed, it still verifies: the name is not signed.
	renamed := filepath.Join(dir, "renamed.deb")
	os.Rename(deb, renamed)
	os.Rename(deb+SigSuffix, renamed+SigSuffix)
	if _, err := VerifyFile(keys, renamed); err != nil {
		t.Errorf("a renamed package: %v", err)
	}
	sig, _ := os.ReadFile(renamed + SigSuffix)

	refusals := map[string]struct {
		content, sig []byte
		keys         []PublicKey
	}{
		"is not the one signed":      {[]byte("package bytEs"), sig, keys},
		"forged or damaged":          {[]byte("package bytes"), bytes.Replace(sig, []byte("size 13"), []byte("size 14"), 1), keys},
		"does not trust":             {[]byte("package bytes"), signed(t, other, "package bytes"), keys},
		"no trusted update keys":     {[]byte("package bytes"), sig, nil},
		"is not a " + signatureTag:   {[]byte("package bytes"), []byte("-----BEGIN PGP SIGNATURE-----\n"), keys},
		"not an ed25519 signature":   {[]byte("package bytes"), bytes.Replace(sig, []byte("sig "), []byte("sig !"), 1), keys},
		"size \"x\" is not a number": {[]byte("package bytes"), bytes.Replace(sig, []byte("size 13"), []byte("size x"), 1), keys},
	}
	for want, c := range refusals {
		_, err := Verify(c.keys, c.sig, bytes.NewReader(c.content))
		var se *SignatureError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
			t.Errorf("want a refusal saying %q, got %v", want, err)
		}
	}
	// A bad key file is an error, not a key left out.
	os.WriteFile(filepath.Join(dir, "keys", "bad.pub"), []byte("nonsense\n"), 0o644)
	if _, err := LoadKeys(filepath.Join(dir, "keys")); err == nil || !strings.Contains(err.Error(), "bad.pub") {
		t.Errorf("a bad key file: %v", err)
	}
}

func signed(t *testing.T, privText []byte, content string) []byte {
	t.Helper()
	p, err := ParsePrivateKey(privText)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sign(p, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeSystem is a machine: package files are "lablog VERSION ARCH HEALTH"
// text, installing one makes it the installed package, and the running
// lablog's health is the installed package's (healthy, running, dead,
// crashing: dead and restarted by systemd at every look, skipped: stopped
// for good, as when the new binary fails the unit's ExecCondition, or
// slow: recording after three looks).
type fakeSystem struct {
	mu        sync.Mutex
	installed string // the installed package file's text
	installs  []string
	looks     int
	restarts  int   // systemd's automatic restarts of the service
	failNext  error // of the next Install
}

func (f *fakeSystem) parse(text string) (Package, string) {
	p := strings.Fields(text)
	if len(p) != 4 {
		return Package{}, ""
	}
	return Package{Name: p[0], Version: p[1], Arch: p[2]}, p[3]
}

func (f *fakeSystem) Inspect(_ context.Context, deb string) (Package, error) {
	data, err := os.ReadFile(deb)
	if err != nil {
		return Package{}, err
	}
	p, _ := f.parse(string(data))
	if p.Name == "" {
		return p, fmt.Errorf("dpkg-deb: %s is not a Debian archive", deb)
	}
	return p, nil
}

func (f *fakeSystem) Installed(context.Context) (Package, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _ := f.parse(f.installed)
	return p, nil
}

func (f *fakeSystem) Install(_ context.Context, deb string) error {
	data, err := os.ReadFile(deb)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.installed = string(data)
	p, _ := f.parse(f.installed)
	f.installs = append(f.installs, p.Version)
	return nil
}

func (f *fakeSystem) Restart(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks = 0
	return nil
}

func (f *fakeSystem) Probe(context.Context) Health {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks++
	_, h := f.parse(f.installed)
	switch h {
	case "crashing":
		f.restarts++
		return Health{Reason: "lablog.service is activating (auto-restart, result exit-code)", Restarts: f.restarts}
	case "skipped":
		return Health{Reason: "lablog.service is inactive (dead, result exec-condition)", Stopped: true}
	}
	switch {
	case h == "healthy", h == "slow" && f.looks > 3:
		return Health{Running: true, Recording: true}
	case h == "running", h == "slow":
		return Health{Running: true, Reason: "not recording: no stream connected"}
	}
	return Health{Reason: "lablog.service is not active (failed)"}
}

type setup struct {
	dir, keep string
	priv      []byte
	sys       *fakeSystem
	faults    map[fault.Kind]string
	// installsAt is how many installs were done when a fault was reported.
	installsAt map[fault.Kind]int
	opts       Options
}

func newSetup(t *testing.T, installed string) *setup {
	t.Helper()
	dir := t.TempDir()
	_, priv := keyPair(t, filepath.Join(dir, "keys"), "fleet")
	keys, err := LoadKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{dir: dir, keep: filepath.Join(dir, "previous"), priv: priv, sys: &fakeSystem{installed: installed},
		faults: map[fault.Kind]string{}, installsAt: map[fault.Kind]int{}}
	s.opts = Options{Keys: keys, Installer: s.sys, Prober: s.sys, KeepDir: s.keep,
		Timeout: 300 * time.Millisecond, Interval: time.Millisecond, StoppedFor: 20 * time.Millisecond,
		Report: func(k fault.Kind, d string, n int64) { s.faults[k] = d; s.installsAt[k] = len(s.sys.installs) }}
	if installed != "" {
		p, _ := s.sys.parse(installed)
		os.MkdirAll(s.keep, 0o755)
		os.WriteFile(filepath.Join(s.keep, p.FileName()), []byte(installed), 0o644)
	}
	return s
}

// pkg writes a signed package file.
func (s *setup) pkg(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(s.dir, "update", strings.ReplaceAll(text, " ", "_")+".deb")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	signFile(t, s.priv, p)
	return p
}

func (s *setup) kept(t *testing.T) []string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(s.keep, "*"))
	for i := range found {
		found[i] = filepath.Base(found[i])
	}
	return found
}

func TestApplyGoodUpdate(t *testing.T) {
	s := newSetup(t, "lablog 1.0 arm64 healthy")
	res, err := Apply(context.Background(), s.pkg(t, "lablog 1.1 arm64 slow"), s.opts)
	if err != nil || res.Outcome != Installed || res.From.Version != "1.0" || res.To.Version != "1.1" {
		t.Fatalf("Apply: %+v %v", res, err)
	}
	if got := s.kept(t); len(got) != 1 || got[0] != "lablog_1.1_arm64.deb" {
		t.Errorf("kept %v, want only the new package", got)
	}
	if len(s.faults) != 0 {
		t.Errorf("faults reported: %v", s.faults)
	}
	// Applying it again changes nothing.
	res, err = Apply(context.Background(), s.pkg(t, "lablog 1.1 arm64 slow"), s.opts)
	if err != nil || res.Outcome != AlreadyInstalled || len(s.sys.installs) != 1 {
		t.Errorf("again: %+v %v, installs %v", res, err, s.sys.installs)
	}
}

// A version that runs but does not record, where the one before recorded,
// is rolled back; so is one that dies, and one dpkg refuses.
func TestApplyRollsBack(t *testing.T) {
	for _, c := range []struct {
		name, update string
		installErr   error
		want         string
	}{
		{"dies", "lablog 1.1 arm64 dead", nil, "not recording (/healthz 200) within 300ms (lablog.service is not active (failed))"},
		// Not the whole Timeout (300ms, a thousand looks) for a crash loop.
		{"keeps exiting", "lablog 1.1 arm64 crashing", nil, "not recording (/healthz 200): it exited and was restarted 3 times (lablog.service is activating (auto-restart, result exit-code))"},
		// Nor for one that systemd has stopped for good (StoppedFor: 20ms).
		{"stopped for good", "lablog 1.1 arm64 skipped", nil, "not recording (/healthz 200): stopped, and nothing starts it again (lablog.service is inactive (dead, result exec-condition))"},
		{"does not record", "lablog 1.1 arm64 running", nil, "not recording (/healthz 200) within 300ms (not recording: no stream connected)"},
		{"install fails", "lablog 1.1 arm64 healthy", errors.New("dpkg: error processing package lablog (--install)"), "install failed: dpkg: error processing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSetup(t, "lablog 1.0 arm64 healthy")
			s.sys.failNext = c.installErr
			res, err := Apply(context.Background(), s.pkg(t, c.update), s.opts)
			if !errors.Is(err, ErrRolledBack) || res.Outcome != RolledBack {
				t.Fatalf("Apply: %+v %v", res, err)
			}
			if !strings.Contains(res.Reason, "lablog 1.1 failed its health check: "+c.want) || !strings.HasSuffix(res.Reason, "rolled back to 1.0") {
				t.Errorf("reason %q, want it to say %q", res.Reason, c.want)
			}
			if p, _ := s.sys.Installed(context.Background()); p.Version != "1.0" {
				t.Errorf("installed after the rollback: %v", p)
			}
			if s.faults[fault.UpdateRolledBack] != res.Reason {
				t.Errorf("fault %q, want %q", s.faults[fault.UpdateRolledBack], res.Reason)
			}
			// Recorded before the rollback's install restarts lablog.
			if n := s.installsAt[fault.UpdateRolledBack]; n != len(s.sys.installs)-1 {
				t.Errorf("the fault was recorded after %d of %d installs, want before the rollback's", n, len(s.sys.installs))
			}
			if got := s.kept(t); len(got) != 1 || got[0] != "lablog_1.0_arm64.deb" {
				t.Errorf("kept %v, want the previous package still", got)
			}
		})
	}
}

// The new version need be no healthier than the old one was: with the
// streams down, running is enough.
func TestApplyAsHealthyAsBefore(t *testing.T) {
	s := newSetup(t, "lablog 1.0 arm64 running")
	res, err := Apply(context.Background(), s.pkg(t, "lablog 1.1 arm64 running"), s.opts)
	if err != nil || res.Outcome != Installed {
		t.Fatalf("Apply: %+v %v", res, err)
	}
	s = newSetup(t, "lablog 1.0 arm64 running")
	if res, err := Apply(context.Background(), s.pkg(t, "lablog 1.1 arm64 dead"), s.opts); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("a dead lablog after a running one: %+v %v", res, err)
	}
}

func TestApplyRefuses(t *testing.T) {
	s := newSetup(t, "lablog 1.0 arm64 healthy")
	forged := s.pkg(t, "lablog 1.1 arm64 healthy")
	os.WriteFile(forged, []byte("lablog 1.1 arm64 dead"), 0o644) // changed after signing
	unsigned := s.pkg(t, "lablog 1.2 arm64 healthy")
	os.Remove(unsigned + SigSuffix)
	other := s.pkg(t, "relay 1.0 arm64 healthy")
	arch := s.pkg(t, "lablog 1.3 amd64 healthy")
	for file, want := range map[string]string{
		forged:   "the file is not the one signed",
		unsigned: "has no signature file",
		other:    `package "relay", not lablog`,
		arch:     "built for amd64, this machine's lablog is arm64",
	} {
		res, err := Apply(context.Background(), file, s.opts)
		if !errors.Is(err, ErrRefused) || res.Outcome != Refused || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %+v %v; want refused saying %q", filepath.Base(file), res, err, want)
		}
		if d := s.faults[fault.UpdateRefused]; !strings.HasPrefix(d, filepath.Base(file)+": ") || !strings.Contains(d, want) {
			t.Errorf("fault detail %q", d)
		}
	}
	if len(s.sys.installs) != 0 {
		t.Errorf("refused updates installed: %v", s.sys.installs)
	}
}

// Without a kept package of the installed version there is no way back:
// refused unless asked for.
func TestApplyNeedsAWayBack(t *testing.T) {
	s := newSetup(t, "lablog 1.0 arm64 healthy")
	os.RemoveAll(s.keep)
	upd := s.pkg(t, "lablog 1.1 arm64 healthy")
	if _, err := Apply(context.Background(), upd, s.opts); err == nil || !strings.Contains(err.Error(), "--no-rollback") || len(s.sys.installs) != 0 {
		t.Fatalf("no kept package: %v, installs %v", err, s.sys.installs)
	}
	s.opts.NoRollback = true
	if res, err := Apply(context.Background(), upd, s.opts); err != nil || res.Outcome != Installed {
		t.Fatalf("--no-rollback: %+v %v", res, err)
	}
	if got := s.kept(t); len(got) != 1 || got[0] != "lablog_1.1_arm64.deb" {
		t.Errorf("kept %v", got)
	}
}

// At boot each dropped file is tried once, in order of name, across
// folders; a missing folder is none; a signature put beside a refused
// file later makes it a new try.
func TestBoot(t *testing.T) {
	s := newSetup(t, "lablog 1.0 arm64 healthy")
	card := filepath.Join(s.dir, "update") // where s.pkg writes
	s.pkg(t, "lablog 1.1 arm64 healthy")
	unsigned := s.pkg(t, "lablog 1.2 arm64 healthy")
	sig, _ := os.ReadFile(unsigned + SigSuffix)
	os.Remove(unsigned + SigSuffix)
	dirs := []string{card, filepath.Join(s.dir, "no-drive")}

	res, err := Boot(context.Background(), dirs, s.opts)
	if len(res) != 2 || res[0].Outcome != Installed || res[0].To.Version != "1.1" || res[1].Outcome != Refused || !errors.Is(err, ErrRefused) {
		t.Fatalf("first boot: %+v %v", res, err)
	}
	res, err = Boot(context.Background(), dirs, s.opts)
	if len(res) != 0 || err != nil || len(s.sys.installs) != 1 {
		t.Fatalf("second boot tried again: %+v %v, installs %v", res, err, s.sys.installs)
	}
	os.WriteFile(unsigned+SigSuffix, sig, 0o644)
	res, err = Boot(context.Background(), dirs, s.opts)
	if len(res) != 1 || res[0].Outcome != Installed || res[0].To.Version != "1.2" || err != nil {
		t.Fatalf("after the signature came: %+v %v", res, err)
	}
	if p, _ := s.sys.Installed(context.Background()); p.Version != "1.2" {
		t.Errorf("installed %v", p)
	}
}
