package debpkg

import (
	"fmt"
	"regexp"
	"strings"
)

// describeRe splits `git describe --tags --always` output: a tag (with or
// without a leading v), then, past the tag, the commits since it and the
// abbreviated hash.
var (
	describeRe = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.+~-]*?)(?:-([0-9]+)-g([0-9a-f]{4,40}))?$`)
	hashRe     = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// An upstream version of a native package: a digit first, then only
	// these characters (no hyphen: that would start a Debian revision).
	debianRe = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)
)

// DebianVersion turns the output of `git describe --tags --always --dirty`
// into a version dpkg accepts and orders as the history does:
//
//	v0.3              0.3
//	v0.3-12-gabc1234  0.3+git12.gabc1234   after 0.3, before 0.3.1 and 0.4
//	v0.4-rc1          0.4~rc1              before 0.4
//	abc1234 (no tag)  0~git<commits>.gabc1234, before any tagged version
//	dev (no git)      0~dev, before everything
//	...-dirty         the same with .dirty (or +dirty) appended
//
// commits is the number of commits in the history (git rev-list --count
// HEAD); it orders builds made before the first tag.
func DebianVersion(describe string, commits int) (string, error) {
	d := strings.TrimSpace(describe)
	dirty := strings.HasSuffix(d, "-dirty")
	d = strings.TrimSuffix(d, "-dirty")
	var v string
	switch m := describeRe.FindStringSubmatch(d); {
	case d == "dev": // the Makefile's VERSION outside a git checkout
		v = "0~dev"
	case hashRe.MatchString(d) && !strings.HasPrefix(describe, "v"):
		v = fmt.Sprintf("0~git%d.g%s", commits, d)
	case m != nil:
		// A hyphen in a tag marks a pre-release (0.4-rc1): ~ sorts it
		// before the release.
		v = strings.ReplaceAll(m[1], "-", "~")
		if m[2] != "" {
			v += fmt.Sprintf("+git%s.g%s", m[2], m[3])
		}
	default:
		return "", fmt.Errorf("debian version: cannot read %q as git describe output (a tag like v1.2, v1.2-3-gabc1234, or a hash)", describe)
	}
	if dirty {
		if strings.Contains(v, "+") {
			v += ".dirty"
		} else {
			v += "+dirty"
		}
	}
	if !debianRe.MatchString(v) {
		return "", fmt.Errorf("debian version: %q from %q is not a valid version", v, describe)
	}
	return v, nil
}
