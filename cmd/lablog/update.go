package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/practable/lablog/internal/config"
	"github.com/practable/lablog/internal/config/wire"
	"github.com/practable/lablog/internal/ops/fault"
	"github.com/practable/lablog/internal/ops/update"
)

// Where lablog update keeps the package to roll back to, and where the
// boot partition is (Raspberry Pi OS mounts it at /boot/firmware).
// updateEUID is a hook for tests.
var updateEUID = os.Geteuid

const (
	defaultKeepDir = "/var/lib/lablog/previous"
	bootPartition  = "/boot/firmware"
)

const updateUsage = `Usage: lablog update keygen|sign|verify|apply|boot|keep ...

Signed updates of lablog, checked after install and rolled back if unhealthy:
  lablog update keygen --out NAME      make a key pair: NAME.pub (trusted by machines) and NAME.key (secret)
  lablog update sign --key NAME.key FILE...
                                       write FILE.sig beside each FILE
  lablog update verify FILE...         check FILE.sig against this machine's trusted keys
  lablog update apply [flags] FILE     install a signed lablog package, check it, roll back if unhealthy
  lablog update boot [flags]           apply the updates dropped into lablog/update/ (boot partition, drive)
  lablog update keep FILE              keep FILE (the installed lablog's package) to roll back to

Trusted keys: *.pub in ` + "/usr/share/lablog/update-keys and /etc/lablog/update-keys" + `.
See docs/updates.md.
`

func cmdUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, updateUsage)
		return errUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, updateUsage)
		return errHelp
	}
	switch args[0] {
	case "keygen":
		return cmdUpdateKeygen(args[1:], stdout, stderr)
	case "sign":
		return cmdUpdateSign(args[1:], stdout, stderr)
	case "verify":
		return cmdUpdateVerify(args[1:], stdout, stderr)
	case "apply", "boot":
		return cmdUpdateApply(ctx, args[0], args[1:], stdout, stderr)
	case "keep":
		return cmdUpdateKeep(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "lablog update: unknown command %q\n\n%s", args[0], updateUsage)
	return errUsage
}

func cmdUpdateKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update keygen", "--out NAME [--comment TEXT]",
		"Make an ed25519 key pair for signing lablog updates: NAME.pub, to put in\n/etc/lablog/update-keys/ (or the image), and NAME.key, the secret (mode 0600)\nthat signs. Keep NAME.key off the machines and backed up.")
	out := fs.String("out", "", "`NAME` of the two files (e.g. keys/lab-fleet)")
	comment := fs.String("comment", "", "`text` stored with the key, e.g. who owns it")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		return usageError(fs, stderr, "want --out NAME and no arguments")
	}
	if *comment == "" {
		*comment = filepath.Base(*out)
	}
	pub, priv, err := update.GenerateKey(*comment)
	if err != nil {
		return err
	}
	// O_EXCL: a key pair is never overwritten by accident.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{*out + ".key", priv, 0o600}, {*out + ".pub", pub, 0o644}} {
		w, err := os.OpenFile(f.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, f.mode)
		if err != nil {
			return fmt.Errorf("update keygen: %w", err)
		}
		_, err = w.Write(f.data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("update keygen: %w", err)
		}
	}
	k, _ := update.ParsePublicKey(pub)
	fmt.Fprintf(stdout, "key %s: %s.pub (trust it: copy it to /etc/lablog/update-keys/), %s.key (secret: signs updates)\n",
		update.KeyID(k), *out, *out)
	return nil
}

func cmdUpdateSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update sign", "--key NAME.key FILE...", "Sign each FILE (a lablog .deb): write FILE.sig beside it.")
	keyPath := fs.String("key", "", "private key `file` (lablog update keygen)")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if *keyPath == "" || fs.NArg() == 0 {
		return usageError(fs, stderr, "want --key FILE and at least one file to sign")
	}
	data, err := os.ReadFile(*keyPath)
	if err != nil {
		return fmt.Errorf("update sign: %w", err)
	}
	priv, err := update.ParsePrivateKey(data)
	if err != nil {
		return fmt.Errorf("update sign: %s: %w", *keyPath, err)
	}
	for _, file := range fs.Args() {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("update sign: %w", err)
		}
		sig, err := update.Sign(priv, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("update sign %s: %w", file, err)
		}
		if err := os.WriteFile(file+update.SigSuffix, sig, 0o644); err != nil {
			return fmt.Errorf("update sign: %w", err)
		}
		fmt.Fprintf(stdout, "%s%s\n", file, update.SigSuffix)
	}
	return nil
}

// keyDirsFlag is the folders of trusted keys, colon-separated.
func keyDirs(flag string) []string {
	if flag == "" {
		return update.KeyDirs
	}
	return strings.Split(flag, ":")
}

func cmdUpdateVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update verify", "[--keys DIR:DIR] FILE...", "Check each FILE against FILE.sig and the trusted keys.")
	dirs := fs.String("keys", "", "`folders` of trusted *.pub keys, colon-separated (default "+strings.Join(update.KeyDirs, ":")+")")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError(fs, stderr, "want at least one file")
	}
	keys, err := update.LoadKeys(keyDirs(*dirs)...)
	if err != nil {
		return err
	}
	bad := 0
	for _, file := range fs.Args() {
		k, err := update.VerifyFile(keys, file)
		if err != nil {
			fmt.Fprintf(stdout, "%s: REFUSED: %v\n", file, err)
			bad++
			continue
		}
		fmt.Fprintf(stdout, "%s: good signature by key %s (%s)\n", file, k.ID, k.From)
	}
	if bad > 0 {
		return fmt.Errorf("update verify: %d of %d files refused", bad, fs.NArg())
	}
	return nil
}

func cmdUpdateApply(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	synopsis, about := "[flags] FILE", "Install FILE, a signed lablog package (FILE.sig beside it), then check that the\n"+
		"new lablog is healthy: it runs and, if the one before recorded, /healthz says 200 within\n"+
		"--timeout. If not, the previous package (kept in --keep) is installed again and the\n"+
		"reason shown on the status page and the LED as a fault. Needs root."
	if name == "boot" {
		synopsis, about = "[flags]", "Apply each update (*.deb with its .sig) in "+bootPartition+"/"+update.UpdateDir+" and in\n"+
			"ARCHIVE/"+update.UpdateDir+" (the archive drive) not tried before, as lablog update apply does;\n"+
			"each file is tried once. Run at boot by lablog-update.service on the appliance."
	}
	fs := newFlags("update "+name, synopsis, about)
	cfgPath := fs.String("config", defaultConfig, "configuration `file` (the status address, the archive drive, where faults are kept)")
	dirs := fs.String("keys", "", "`folders` of trusted *.pub keys, colon-separated (default "+strings.Join(update.KeyDirs, ":")+")")
	keepDir := fs.String("keep", defaultKeepDir, "`folder` of the package to roll back to")
	timeout := fs.Duration("timeout", update.DefaultTimeout, "how long the new lablog has to be healthy")
	noRollback := fs.Bool("no-rollback", false, "install even when no package of the installed version is kept to roll back to")
	var from *string
	if name == "boot" {
		from = fs.String("from", "", "`folders` to look in, colon-separated (default the boot partition's and the archive drive's "+update.UpdateDir+")")
	}
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	if name == "apply" && fs.NArg() != 1 {
		return usageError(fs, stderr, "want one package file")
	}
	if name == "boot" && fs.NArg() != 0 {
		return usageError(fs, stderr, "takes no arguments")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	keys, err := update.LoadKeys(keyDirs(*dirs)...)
	if err != nil {
		return err
	}
	// dpkg would refuse halfway, and a refusal must not look like a
	// failed update to roll back.
	if updateEUID() != 0 {
		return fmt.Errorf("update %s: needs root (dpkg, systemctl): sudo lablog update %s %s", name, name, strings.Join(args, " "))
	}
	log := newLogger(stderr, 0)
	faults := wire.OpenFaults(cfg, log)
	opts := update.Options{
		Keys: keys, Installer: update.Dpkg{}, KeepDir: *keepDir, Timeout: *timeout, NoRollback: *noRollback,
		Prober: update.Systemd{Binary: "/usr/bin/lablog", Unit: "lablog.service", Healthz: update.HealthzURL(cfg.Status.Listen)},
		Logger: log,
		// The running lablog reads the record when it starts; the file
		// stays the service user's so it can go on writing it.
		Report: func(k fault.Kind, detail string, n int64) {
			faults.Report(k, detail, n)
			faults.Flush()
			chownLike(filepath.Join(filepath.Dir(cfg.Buffer.Path), fault.FileName), filepath.Dir(cfg.Buffer.Path))
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 4**timeout+5*time.Minute) // two installs and two checks at most, per file
	defer cancel()
	if name == "apply" {
		res, err := update.Apply(ctx, fs.Arg(0), opts)
		printResult(stdout, fs.Arg(0), res)
		return err
	}
	look := []string{filepath.Join(bootPartition, update.UpdateDir), filepath.Join(cfg.Archive.Path, update.UpdateDir)}
	if *from != "" {
		look = strings.Split(*from, ":")
	}
	results, err := update.Boot(ctx, look, opts)
	for _, r := range results {
		printResult(stdout, "", r)
	}
	if len(results) == 0 && err == nil {
		fmt.Fprintf(stdout, "no new update in %s\n", strings.Join(look, ", "))
	}
	return err
}

func printResult(w io.Writer, file string, r update.Result) {
	switch r.Outcome {
	case update.Installed:
		fmt.Fprintf(w, "installed lablog %s (was %s) and it is healthy\n", r.To.Version, orNone(r.From.Version))
	case update.AlreadyInstalled:
		fmt.Fprintf(w, "lablog %s is installed already: nothing to do\n", r.To.Version)
	case update.RolledBack:
		fmt.Fprintf(w, "ROLLED BACK: %s\n", r.Reason)
	case update.Refused:
		fmt.Fprintf(w, "REFUSED %s: %s\n", file, r.Reason)
	}
}

func orNone(v string) string {
	if v == "" {
		return "not installed"
	}
	return v
}

// chownLike gives path the owner of dir (the service user's folder).
func chownLike(path, dir string) {
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		os.Chown(path, int(st.Uid), int(st.Gid))
	}
}

func cmdUpdateKeep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("update keep", "[--keep DIR] FILE", "Keep FILE, the package of the installed lablog, as the one lablog update\napply rolls back to (the image does this with its own package).")
	keepDir := fs.String("keep", defaultKeepDir, "`folder` of the package to roll back to")
	file, err := parseOne(fs, args, "package file", stdout, stderr)
	if err != nil {
		return err
	}
	pkg, err := update.Keep(ctx, file, *keepDir, update.Dpkg{})
	if err != nil {
		return fmt.Errorf("update keep: %w", err)
	}
	fmt.Fprintf(stdout, "kept %s\n", filepath.Join(*keepDir, pkg.FileName()))
	return nil
}
