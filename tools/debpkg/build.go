// Package debpkg builds lablog's Debian packages with nfpm, from lablog
// binaries that are already built. What the package holds beside the
// binary is asked of lablog itself, so nothing is written twice: the unit is
// `lablog install --print`, the conffile is `lablog config example`, the man
// page wraps `lablog help`, and the buffer format that the preinst guards is
// `lablog version --buffer-format`.
package debpkg

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/practable/lablog/internal/ops/service"
	"github.com/practable/lablog/internal/ops/update"
	"github.com/practable/lablog/internal/platform/atomicfile"
)

// Paths inside the package.
const (
	BinPath    = "/usr/bin/lablog"
	UnitPath   = "/lib/systemd/system/lablog.service"
	ConfigPath = "/etc/lablog/lablog.yaml"
	docDir     = "/usr/share/doc/lablog"
	manPath    = "/usr/share/man/man1/lablog.1.gz"
)

// configMode is the packaged configuration's mode (root:lablog, set by the
// postinst): it may hold relay tokens.
const configMode = 0o640

// machines maps Debian architectures to their ELF machine.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// Spec is one package to build.
type Spec struct {
	Arch       string // Debian architecture: amd64 or arm64
	Version    string // Debian version (DebianVersion)
	Binary     string // the lablog binary for Arch
	Host       string // a lablog binary of the same build that runs here
	Readme     string // README.md, shipped as documentation
	Maintainer string // "Name <address>"
	// UpdateKeys are public keys (lablog update keygen's NAME.pub) that the
	// packaged lablog trusts for signed updates, installed in
	// /usr/share/lablog/update-keys/.
	UpdateKeys []string
	Date       time.Time
	// BufferFormat is the buffer format the packaged lablog reads, which
	// the preinst guards; 0 asks Host. Tests set an older one to play a
	// downgrade.
	BufferFormat int
	Out          string // folder for the .deb
}

// FileName is the package's file name, as Debian names it.
func (s Spec) FileName() string {
	return fmt.Sprintf("lablog_%s_%s.deb", s.Version, s.Arch)
}

// Build writes the package into s.Out and returns its path.
func Build(ctx context.Context, s Spec) (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp("", "lablog-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)

	gen, err := s.generate(ctx, stage)
	if err != nil {
		return "", err
	}
	info := s.info(gen)
	if err := os.MkdirAll(s.Out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(s.Out, s.FileName())
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return "", fmt.Errorf("package: %w", err)
	}
	defer f.Abort()
	if err := deb.Default.Package(nfpm.WithDefaults(info), f); err != nil {
		return "", fmt.Errorf("package %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return "", fmt.Errorf("package: %w", err)
	}
	return path, nil
}

func (s Spec) check() error {
	want, ok := machines[s.Arch]
	if !ok {
		return fmt.Errorf("package: architecture %q: want amd64 or arm64", s.Arch)
	}
	if !debianRe.MatchString(s.Version) {
		return fmt.Errorf("package: version %q is not a Debian version", s.Version)
	}
	if s.Maintainer == "" || !strings.Contains(s.Maintainer, "<") {
		return fmt.Errorf("package: maintainer %q: want \"Name <address>\"", s.Maintainer)
	}
	for _, k := range s.UpdateKeys {
		data, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("package: update key: %w", err)
		}
		if _, err := update.ParsePublicKey(data); err != nil || !strings.HasSuffix(k, ".pub") {
			return fmt.Errorf("package: update key %s: want a NAME.pub of lablog update keygen (%v)", k, err)
		}
	}
	f, err := elf.Open(s.Binary)
	if err != nil {
		return fmt.Errorf("package: lablog binary for %s: %w", s.Arch, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("package: %s is a %s binary, not %s", s.Binary, f.Machine, s.Arch)
	}
	return nil
}

// generated are the files made for the package, in the stage folder.
type generated struct {
	unit, config, man, changelog, copyright, readme, overrides string
	scripts                                                    map[string]string
}

// lablog runs the host binary.
func (s Spec) lablog(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.Host, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", s.Host, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (s Spec) generate(ctx context.Context, stage string) (generated, error) {
	g := generated{scripts: map[string]string{}}
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(stage, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		return p, os.WriteFile(p, data, 0o644)
	}
	// The binaries must come from one build: the host's version string is
	// in the packaged binary.
	ver, err := s.lablog(ctx, "version")
	if err != nil {
		return g, err
	}
	built := strings.TrimPrefix(strings.TrimSpace(string(ver)), "lablog ")
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return g, err
	}
	if built == "" || !bytes.Contains(bin, []byte(built)) {
		return g, fmt.Errorf("package: %s (version %q) and %s are not one build", s.Host, built, s.Binary)
	}

	config, err := s.lablog(ctx, "config", "example")
	if err != nil {
		return g, err
	}
	if g.config, err = write("root"+ConfigPath, config); err != nil {
		return g, err
	}
	// As installed: it shows an inline token, so lablog reads it only as
	// a secret's mode.
	if err := os.Chmod(g.config, configMode); err != nil {
		return g, err
	}
	// The unit for that configuration, as the image renders it.
	unit, err := s.lablog(ctx, "install", "--print", "--root", filepath.Join(stage, "root"),
		"--config", ConfigPath, "--exec", BinPath)
	if err != nil {
		return g, err
	}
	if g.unit, err = write("lablog.service", unit); err != nil {
		return g, err
	}

	format := s.BufferFormat
	if format == 0 {
		out, err := s.lablog(ctx, "version", "--buffer-format")
		if err != nil {
			return g, err
		}
		if format, err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil || format < 1 {
			return g, fmt.Errorf("package: lablog version --buffer-format said %q", out)
		}
	}

	man, err := s.manPage(ctx, built)
	if err != nil {
		return g, err
	}
	if g.man, err = write("lablog.1.gz", gz(man)); err != nil {
		return g, err
	}
	if g.changelog, err = write("changelog.gz", gz(s.changelog(built))); err != nil {
		return g, err
	}
	if g.copyright, err = write("copyright", []byte(copyright)); err != nil {
		return g, err
	}
	readme, err := os.ReadFile(s.Readme)
	if err != nil {
		return g, fmt.Errorf("package: %w", err)
	}
	if g.readme, err = write("README.md.gz", gz(readme)); err != nil {
		return g, err
	}

	if g.overrides, err = write("lintian-overrides", []byte(lintianOverrides)); err != nil {
		return g, err
	}

	vars := struct {
		BufferFormat  int
		User, UserAdd string
	}{format, service.DefaultUser, strings.Join(service.UserAddArgs(service.DefaultUser), " ")}
	for _, name := range []string{"preinst", "postinst", "prerm", "postrm"} {
		text, err := Script(name, vars)
		if err != nil {
			return g, err
		}
		if g.scripts[name], err = write(name, text); err != nil {
			return g, err
		}
	}
	return g, nil
}

//go:embed scripts
var scriptFS embed.FS

// Script renders one maintainer script.
func Script(name string, vars any) ([]byte, error) {
	src, err := scriptFS.ReadFile("scripts/" + name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, vars); err != nil {
		return nil, fmt.Errorf("script %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func (s Spec) info(g generated) *nfpm.Info {
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: s.Date}}
	}
	conf := file(g.config, ConfigPath, configMode)
	conf.Type = files.TypeConfigNoReplace
	contents := files.Contents{
		file(s.Binary, BinPath, 0o755),
		file(g.unit, UnitPath, 0o644),
		conf,
		file(g.man, manPath, 0o644),
		file(g.changelog, docDir+"/changelog.gz", 0o644),
		file(g.copyright, docDir+"/copyright", 0o644),
		file(g.readme, docDir+"/README.md.gz", 0o644),
		file(g.overrides, "/usr/share/lintian/overrides/lablog", 0o644),
	}
	for _, k := range s.UpdateKeys {
		contents = append(contents, file(k, update.KeyDirs[0]+"/"+filepath.Base(k), 0o644))
	}
	return &nfpm.Info{
		Name:          "lablog",
		Arch:          s.Arch,
		Platform:      "linux",
		Version:       s.Version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    s.Maintainer,
		Homepage:      "https://github.com/practable/lablog",
		Description: "records remote-lab logging streams and archives them as Parquet\n" +
			"lablog opens a websocket per remote-lab device (practable.io relay topics,\n" +
			"a relay host or any ws URL), commits every frame to a bbolt buffer, and\n" +
			"every hour moves each closed hour into one Parquet file on an archive\n" +
			"drive, published atomically. It runs as the systemd service lablog.",
		MTime: s.Date,
		Overridables: nfpm.Overridables{
			// init-system-helpers (deb-systemd-helper) is essential.
			Depends:  []string{"passwd"},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PreInstall:  g.scripts["preinst"],
				PostInstall: g.scripts["postinst"],
				PreRemove:   g.scripts["prerm"],
				PostRemove:  g.scripts["postrm"],
			},
		},
	}
}

// gz compresses as Debian wants documentation: best compression, no name
// or time in the header, so builds are reproducible.
func gz(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// changelog is the one entry of a native package built from git.
func (s Spec) changelog(built string) []byte {
	return fmt.Appendf(nil, "lablog (%s) unstable; urgency=medium\n\n"+
		"  * Built from lablog %s; the changes are in the project's git\n"+
		"    history.\n\n"+
		" -- %s  %s\n", s.Version, built, s.Maintainer, s.Date.UTC().Format(time.RFC1123Z))
}

// copyright is the machine-readable copyright file (DEP-5), whose License
// fields are SPDX identifiers. The relay host that the appliance image ships
// beside lablog is a separate program with its own notice in the image
// (image/relay-copyright.sh).
const copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lablog
Upstream-Contact: lablog maintainers <lablog@practable.io>
Source: https://github.com/practable/lablog
Comment: SPDX-License-Identifier: Apache-2.0
 The binary is statically linked (Go) and includes the Go modules listed
 in the repository's go.mod, each under its own licence, all compatible
 with Apache-2.0. The lablog appliance image also ships the practable relay
 (/usr/local/bin/relay-host), a separate program under the GNU GPL version 3
 whose source is https://github.com/practable/relay; it is not part of this
 package (see /usr/share/doc/relay-host/copyright in the image).

Files: *
Copyright: 2026 the lablog authors (practable.io)
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License");
 you may not use this file except in compliance with the License.
 You may obtain a copy of the License at
 .
 https://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS,
 WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 See the License for the specific language governing permissions and
 limitations under the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0
 can be found in "/usr/share/common-licenses/Apache-2.0".
`

// lintianOverrides: lintian exempts Go binaries from statically-linked-binary
// only when it sees a source package that build-depends on golang-go; this
// package is built from the Go build directly, static on purpose
// (CGO_ENABLED=0: one binary for every Debian and Raspberry Pi OS release).
const lintianOverrides = `# Go binaries are statically linked by design (CGO_ENABLED=0).
lablog: statically-linked-binary [usr/bin/lablog]
`
