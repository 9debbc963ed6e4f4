#!/usr/bin/env bash
# `make deps`: installs the Debian packages `make test` needs and lets the
# kernel run arm64 programs (binfmt.sh). As root it does both; otherwise it
# prints the exact command and fails, so nothing runs half-equipped.
# (DuckDB for the tests comes from npm: make deps-test.)
set -euo pipefail

# command-or-file package: what each test needs, with the package that has it.
checks=(
	"node nodejs" "npm npm"                      # the independent Parquet reader (DuckDB via npm)
	"qemu-aarch64-static qemu-user-static"       # the arm64 run of the tests
	"make make" "git git"                        # the build and its version
	"/usr/bin/chromium chromium"                 # the status page's browser test
	"systemd-analyze systemd"                    # systemd-analyze verify of the unit
	"lintian lintian"                            # the Debian packages' check (make deb-test)
	"strace strace"                              # the buffer's fsync count against the kernel's
	"unshare util-linux" "ip iproute2"           # the real relay tests' network namespace
	# The appliance (make image-test): the arm64 root, its boot, disk images
	# made without mounting, ssh/rsync into the guest, the overlay's linters.
	"debootstrap debootstrap" "qemu-system-aarch64 qemu-system-arm" "update-binfmts binfmt-support"
	"mkfs.vfat dosfstools" "mcopy mtools" "debugfs e2fsprogs" "sfdisk fdisk"
	"ssh openssh-client" "rsync rsync" "shellcheck shellcheck" "nft nftables" "visudo sudo"
	# pi-gen's own build.sh in the image test and the Docker route's test: the
	# tools of its depends file (docs/appliance.md, "Build the image", the native lists).
	"quilt quilt" "parted parted" "qemu-arm qemu-user" "zerofree zerofree" "zip zip"
	"capsh libcap2-bin" "bsdtar libarchive-tools" "curl curl" "xxd xxd" "file file"
	"lsmod kmod" "bc bc" "gpg gpg" "pigz pigz" "arch-test arch-test" "xz xz-utils"
)
need=()
for c in "${checks[@]}"; do
	read -r what pkg <<<"$c"
	case "$what" in
	/*) [ -x "$what" ] && continue ;;
	*) command -v "$what" >/dev/null || [ -x "/usr/sbin/$what" ] || [ -x "/sbin/$what" ] && continue ;;
	esac
	need+=("$pkg")
done
if [ "${#need[@]}" -eq 0 ]; then
	echo "deps: every Debian package the tests need is installed"
	exec "$(dirname "$0")/binfmt.sh"
fi
cmd="apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages; install them as root, then run make test again:" >&2
	echo "  sudo apt-get update && sudo $cmd" >&2
	exit 1
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # $cmd is our own word list
$cmd -qq
"$(dirname "$0")/binfmt.sh"
