// Package aptrepo builds a signed apt repository of lablog's packages: a
// folder of static files that any web server or S3 bucket can serve, from
// which machines `apt upgrade` (or unattended-upgrades) lablog.
//
// Layout (one suite, one component, flat over architectures):
//
//	pool/main/l/lablog/lablog_VERSION_ARCH.deb   every version ever added
//	dists/SUITE/main/binary-ARCH/Packages(.gz)
//	dists/SUITE/Release, InRelease (clearsigned), Release.gpg (detached)
//	lablog-archive-keyring.gpg                  the public key, for signed-by
//
// apt checks the Release file's OpenPGP signature and the hashes in it, so
// signing uses gpg (a key in GNUPGHOME). Packages already in the pool stay,
// so a machine can go back with apt install lablog=VERSION.
package aptrepo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options of Build.
type Options struct {
	Dir       string   // the repository (created or added to)
	Debs      []string // packages to add to the pool
	Suite     string   // default "stable"
	Key       string   // gpg key (id, fingerprint or address) that signs
	GnupgHome string   // gpg's home; default gpg's own
	Date      time.Time
}

// Component is the one component.
const Component = "main"

// KeyringName is the exported public key, at the top of the repository.
const KeyringName = "lablog-archive-keyring.gpg"

// Build adds Debs to the pool and writes the indexes and their signatures.
func Build(ctx context.Context, o Options) error {
	if o.Suite == "" {
		o.Suite = "stable"
	}
	if o.Key == "" {
		return fmt.Errorf("apt repository: no signing key (a gpg key id)")
	}
	if o.Date.IsZero() {
		o.Date = time.Now()
	}
	pool := filepath.Join(o.Dir, "pool", Component, "l", "lablog")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		return fmt.Errorf("apt repository: %w", err)
	}
	for _, deb := range o.Debs {
		f, err := control(ctx, deb)
		if err != nil {
			return err
		}
		dst := filepath.Join(pool, fmt.Sprintf("%s_%s_%s.deb", f["Package"], f["Version"], f["Architecture"]))
		if err := copyFile(deb, dst); err != nil {
			return fmt.Errorf("apt repository: %w", err)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(pool, "*.deb"))
	slices.Sort(debs)
	if len(debs) == 0 {
		return fmt.Errorf("apt repository: no packages (give .deb files)")
	}
	// One Packages per architecture.
	byArch := map[string]*bytes.Buffer{}
	for _, deb := range debs {
		text, arch, err := stanza(ctx, o.Dir, deb)
		if err != nil {
			return err
		}
		if byArch[arch] == nil {
			byArch[arch] = &bytes.Buffer{}
		}
		byArch[arch].WriteString(text + "\n")
	}
	dist := filepath.Join(o.Dir, "dists", o.Suite)
	var archs []string
	var indexes []string // paths relative to dist
	for arch, b := range byArch {
		archs = append(archs, arch)
		rel := filepath.Join(Component, "binary-"+arch, "Packages")
		if err := os.MkdirAll(filepath.Join(dist, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dist, rel), b.Bytes(), 0o644); err != nil {
			return err
		}
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		w.Write(b.Bytes())
		w.Close()
		if err := os.WriteFile(filepath.Join(dist, rel+".gz"), z.Bytes(), 0o644); err != nil {
			return err
		}
		indexes = append(indexes, rel, rel+".gz")
	}
	slices.Sort(archs)
	slices.Sort(indexes)
	release, err := releaseFile(dist, o, archs, indexes)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dist, "Release"), release, 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"--clearsign", "--output", filepath.Join(dist, "InRelease")},
		{"--detach-sign", "--armor", "--output", filepath.Join(dist, "Release.gpg")},
	} {
		os.Remove(args[len(args)-1])
		if _, err := gpg(ctx, o, append(append([]string{"--local-user", o.Key, "--digest-algo", "SHA256"}, args...), filepath.Join(dist, "Release"))...); err != nil {
			return err
		}
	}
	pub, err := gpg(ctx, o, "--export", o.Key)
	if err != nil {
		return err
	}
	if len(pub) == 0 {
		return fmt.Errorf("apt repository: gpg --export %s gave no key", o.Key)
	}
	return os.WriteFile(filepath.Join(o.Dir, KeyringName), pub, 0o644)
}

func gpg(ctx context.Context, o Options, args ...string) ([]byte, error) {
	full := append([]string{"--batch", "--yes"}, args...)
	if o.GnupgHome != "" {
		full = append([]string{"--homedir", o.GnupgHome}, full...)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "gpg", full...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apt repository: gpg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// control is a package's control fields.
func control(ctx context.Context, deb string) (map[string]string, error) {
	text, err := controlText(ctx, deb)
	if err != nil {
		return nil, err
	}
	f := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			f[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range []string{"Package", "Version", "Architecture"} {
		if f[k] == "" {
			return nil, fmt.Errorf("apt repository: %s has no %s", deb, k)
		}
	}
	return f, nil
}

func controlText(ctx context.Context, deb string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", deb).Output()
	if err != nil {
		return "", fmt.Errorf("apt repository: dpkg-deb --field %s: %w", deb, err)
	}
	return strings.TrimRight(string(out), "\n"), nil
}

// stanza is the package's Packages entry: its control fields, then where
// it is and its hashes.
func stanza(ctx context.Context, root, deb string) (text, arch string, err error) {
	f, err := control(ctx, deb)
	if err != nil {
		return "", "", err
	}
	ctrl, _ := controlText(ctx, deb)
	data, err := os.ReadFile(deb)
	if err != nil {
		return "", "", err
	}
	rel, _ := filepath.Rel(root, deb)
	m := md5.Sum(data)
	s := sha256.Sum256(data)
	return fmt.Sprintf("%s\nFilename: %s\nSize: %d\nMD5sum: %s\nSHA256: %s\n", ctrl, filepath.ToSlash(rel), len(data),
		hex.EncodeToString(m[:]), hex.EncodeToString(s[:])), f["Architecture"], nil
}

func releaseFile(dist string, o Options, archs, indexes []string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Origin: lablog\nLabel: lablog\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: %s\nComponents: %s\n",
		o.Suite, o.Suite, o.Date.UTC().Format(time.RFC1123Z), strings.Join(archs, " "), Component)
	b.WriteString("Description: lablog, the remote-lab logger (https://github.com/practable/lablog)\n")
	var md, sh bytes.Buffer
	for _, rel := range indexes {
		data, err := os.ReadFile(filepath.Join(dist, rel))
		if err != nil {
			return nil, err
		}
		m := md5.Sum(data)
		s := sha256.Sum256(data)
		fmt.Fprintf(&md, " %s %d %s\n", hex.EncodeToString(m[:]), len(data), filepath.ToSlash(rel))
		fmt.Fprintf(&sh, " %s %d %s\n", hex.EncodeToString(s[:]), len(data), filepath.ToSlash(rel))
	}
	b.WriteString("MD5Sum:\n" + md.String() + "SHA256:\n" + sh.String())
	return b.Bytes(), nil
}

func copyFile(src, dst string) error {
	if a, err := filepath.Abs(src); err == nil {
		if b, err := filepath.Abs(dst); err == nil && a == b {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
