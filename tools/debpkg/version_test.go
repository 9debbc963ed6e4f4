package debpkg

import (
	"os/exec"
	"testing"
)

func TestDebianVersion(t *testing.T) {
	for _, tc := range []struct {
		describe string
		commits  int
		want     string
	}{
		{"v0.3", 0, "0.3"},
		{"0.3", 0, "0.3"},
		{"v0.3-12-gabc1234", 0, "0.3+git12.gabc1234"},
		{"v0.3-12-gabc1234-dirty", 0, "0.3+git12.gabc1234.dirty"},
		{"v0.3-dirty", 0, "0.3+dirty"},
		{"v0.4-rc1", 0, "0.4~rc1"},
		{"v0.4-rc1-3-g0123abcd", 0, "0.4~rc1+git3.g0123abcd"},
		{"70805ff", 42, "0~git42.g70805ff"},
		{"70805ff-dirty", 42, "0~git42.g70805ff+dirty"},
		{"abc1234\n", 7, "0~git7.gabc1234"},
		{"dev", 0, "0~dev"},
	} {
		got, err := DebianVersion(tc.describe, tc.commits)
		if err != nil || got != tc.want {
			t.Errorf("DebianVersion(%q, %d) = %q, %v; want %q", tc.describe, tc.commits, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "devel", "release candidate", "v", "vx1", "v1.0 beta", "v1/2"} {
		if got, err := DebianVersion(bad, 1); err == nil {
			t.Errorf("DebianVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// dpkg itself accepts every version and orders them as the history runs.
func TestDebianVersionOrderByDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not installed: the order is checked on Debian only")
	}
	history := []struct {
		describe string
		commits  int
	}{
		{"dev", 0}, {"abc1234", 5}, {"abc1234-dirty", 5}, {"abc1299", 6}, {"abc1300", 12},
		{"v0.3-rc1", 0}, {"v0.3-rc1-2-gaaaa111", 0},
		{"v0.3", 0}, {"v0.3-dirty", 0}, {"v0.3-1-gfff0000", 0}, {"v0.3-1-gfff0000-dirty", 0},
		{"v0.3-2-g0000aaa", 0}, {"v0.3-12-gabc1234", 0},
		{"v0.3.1", 0}, {"v0.4", 0}, {"v0.10", 0}, {"v1.0", 0},
	}
	var prev string
	for i, h := range history {
		v, err := DebianVersion(h.describe, h.commits)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(dpkg, "--validate-version", v).CombinedOutput(); err != nil {
			t.Errorf("dpkg rejects %q (from %q): %v %s", v, h.describe, err, out)
		}
		if i > 0 {
			if out, err := exec.Command(dpkg, "--compare-versions", prev, "lt", v).CombinedOutput(); err != nil {
				t.Errorf("dpkg does not order %q before %q: %v %s", prev, v, err, out)
			}
		}
		prev = v
	}
}
