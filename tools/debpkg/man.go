package debpkg

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
)

// commandRe finds the commands in `lablog help`: lines "  lablog NAME ...".
var commandRe = regexp.MustCompile(`(?m)^  lablog ([a-z]+)`)

// manPage is lablog(1): `lablog help` and every command's help, verbatim,
// with the files the package installs.
func (s Spec) manPage(ctx context.Context, built string) ([]byte, error) {
	usage, err := s.lablog(ctx, "help")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH LABLOG 1 %q %q \"User Commands\"\n", s.Date.UTC().Format("2006-01-02"), "lablog "+built)
	b.WriteString(".SH NAME\nlablog \\- record remote-lab logging streams and archive them as Parquet\n")
	b.WriteString(".SH SYNOPSIS\n.B lablog\n.I command\n.RI [ flags ]\n")
	b.WriteString(".SH DESCRIPTION\n")
	verbatim(&b, usage)
	b.WriteString(".SH COMMANDS\n")
	seen := map[string]bool{}
	for _, m := range commandRe.FindAllSubmatch(usage, -1) {
		name := string(m[1])
		if seen[name] {
			continue
		}
		seen[name] = true
		help, err := s.lablog(ctx, "help", name)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, ".SS %s\n", name)
		verbatim(&b, help)
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("man page: no command found in lablog help")
	}
	b.WriteString(`.SH FILES
.TP
.I /etc/lablog/lablog.yaml
the configuration (lablog config example shows every key)
.TP
.I /etc/lablog/tokens
relay token files
.TP
.I /var/lib/lablog/buffer.db
the buffer: every frame is committed here before it is archived
.TP
.I /media/lablog
the archive: one Parquet file per stream and hour
.TP
.I /lib/systemd/system/lablog.service
the service (lablog install \-\-print shows the same unit)
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
/usr/share/doc/lablog/README.md.gz
`)
	return b.Bytes(), nil
}

// verbatim writes text as a no-fill block, escaped for roff.
func verbatim(b *bytes.Buffer, text []byte) {
	b.WriteString(".nf\n")
	for _, line := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		line = strings.ReplaceAll(line, `\`, `\e`)
		line = strings.ReplaceAll(line, "-", `\-`)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(".fi\n")
}
