package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// lablog-grow-root takes the word `resize` off cmdline.txt and leaves every
// other word, then marks itself done. (Growing the partition and filesystem
// needs the booted image: TestImage checks it.)
func TestGrowRootDropsResize(t *testing.T) {
	script := filepath.Join(repoRoot(t), "rootfs-overlay/usr/local/sbin/lablog-grow-root")
	cases := []struct{ in, want string }{
		{"console=serial0,115200 root=PARTUUID=1-02 rootwait resize ro\n", "console=serial0,115200 root=PARTUUID=1-02 rootwait ro\n"},
		{"console=tty1 rootwait resize\n", "console=tty1 rootwait\n"},
		{"resize console=tty1\n", "console=tty1\n"},
		{"console=tty1 noresize resize=no rootwait\n", "console=tty1 noresize resize=no rootwait\n"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		boot, marker := filepath.Join(dir, "boot"), filepath.Join(dir, "var/lib/lablog-image/root-grown")
		writeFile(t, filepath.Join(boot, "cmdline.txt"), c.in, 0o755)
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), "LABLOG_BOOT_DIR="+boot, "LABLOG_GROW_MARKER="+marker, "LABLOG_GROW_ROOT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v\n%s", c.in, err, out)
		}
		got, _ := os.ReadFile(filepath.Join(boot, "cmdline.txt"))
		if string(got) != c.want {
			t.Errorf("cmdline.txt %q became %q, want %q", c.in, got, c.want)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("%q: no marker: %v", c.in, err)
		}
	}
}
