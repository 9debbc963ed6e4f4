#!/usr/bin/env bash
# Builds the arm64 Debian root filesystem that the emulated image test boots,
# standing in for pi-gen's stages 0-2 (Raspberry Pi OS Lite): debootstrap
# (minbase) from Debian's packages with our stage's package list, Debian's
# arm64 kernel and a small initramfs. The result is cached as a tarball keyed
# by a hash of everything that goes into it, so a re-run takes seconds.
#
# Usage: build-rootfs.sh        prints the path of the cached tarball
# Environment: LABLOG_IMAGE_CACHE (default /var/cache/lablog-image-test),
#              MIRROR (http://deb.debian.org/debian). The Debian release is
#              pi-gen-config/config's RELEASE, the one the image is built on
#              (like pi-gen, a RELEASE in the environment overrides it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "${here}/../.." && pwd)
cache=${LABLOG_IMAGE_CACHE:-/var/cache/lablog-image-test}
# The config is pi-gen's, sourced as pi-gen's build.sh sources it; in a
# subshell, so only RELEASE comes out.
suite=$(
	# shellcheck source-path=SCRIPTDIR source=../../pi-gen-config/config
	. "${repo}/pi-gen-config/config"
	echo "${RELEASE:?pi-gen-config/config sets no RELEASE}"
)
mirror=${MIRROR:-http://deb.debian.org/debian}

# What Raspberry Pi OS Lite has and the test needs (init, udev, ssh, sudo;
# systemd-timesyncd as pi-gen's stage1 installs it: its export-image step
# needs the systemd-timesync user), then our stage's own packages.
base="systemd systemd-sysv dbus udev kmod iproute2 openssh-server sudo dosfstools e2fsprogs util-linux systemd-timesyncd"
# With LABLOG_IMAGE_CLOUD_INIT=1 (make image-test-cloud-init): cloud-init,
# Debian's own, as stage2's 04-cloud-init installs it for Raspberry Pi
# Imager's settings, and locales, a Depends of cloud-init that stage0
# installs. It makes the root 60% more CPU under qemu-user (the Python
# packages' byte-compilation, ca-certificates) and each boot 40-100 s
# longer, so make test's root leaves it out (docs/testing.md). Only
# Depends, as debootstrap resolves them; it does not resolve virtual
# packages, so python3-cffi-backend is named (cloud-init needs
# python3-cryptography, which needs its python3-cffi-backend-api-*).
if [ "${LABLOG_IMAGE_CLOUD_INIT:-0}" = 1 ]; then
	base="${base} locales cloud-init python3-cffi-backend"
fi
stage=$(grep -hv '^#' "${repo}/image/stage-lablog/00-packages/"00-packages* | tr -s ' \n' ' ')
# The initramfs needs only what finds the root: virtio disks, ext4, and vfat
# for the boot partition (MODULES=most takes 10 minutes under emulation).
modules="virtio_pci virtio_blk virtio_net ext4 vfat nls_cp437 nls_ascii"

key=$(printf '%s\n' "${suite}" "${mirror}" "${base}" "${stage}" "${modules}" |
	cat - "$0" | sha256sum | cut -c1-16)
tarball="${cache}/rootfs-${suite}-arm64-${key}.tar"
# One build at a time: make test starts one early in the background and the
# image test's own call waits here for it, then finds its tarball.
mkdir -p "${cache}"
exec 9>"${cache}/build-rootfs.lock"
flock 9
if [ -f "${tarball}" ]; then
	echo "build-rootfs: cached ${tarball}" >&2
	echo "${tarball}"
	exit 0
fi

# arm64 binaries run through qemu-user: binfmt_misc must be mounted and the
# qemu-aarch64 format registered (make deps does it; so does this).
"${repo}/.ci/binfmt.sh" >&2

mkdir -p "${cache}"
work=$(mktemp -d "${cache}/build.XXXXXX")
root="${work}/root"
cleanup() {
	for m in proc sys dev; do
		if mountpoint -q "${root}/${m}" 2>/dev/null; then umount -l "${root}/${m}"; fi
	done
	rm -rf "${work}"
}
trap cleanup EXIT

start=$(date +%s)
# quietly runs a long step with its output in a log, printing a line each
# minute (the step's last log line) so a first build is not ~15 silent minutes.
quietly() {
	local log=$1
	shift
	"$@" >"${log}" 2>&1 &
	local pid=$!
	while ! wait_for "${pid}" 60; do
		echo "build-rootfs: ... $(($(date +%s) - start)) s: $(tail -1 "${log}" | cut -c1-100)" >&2
	done
	wait "${pid}"
}
# wait_for PID SECONDS: true once PID has ended, false after SECONDS.
wait_for() {
	local i
	for ((i = 0; i < $2; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 1
	done
	return 1
}
echo "build-rootfs: debootstrap ${suite} arm64 (10-20 min on a busy 2-core machine; a line each minute)" >&2
mkdir -p "${cache}/debs" # downloaded packages, kept when the key changes
quietly "${work}/debootstrap.log" debootstrap --arch=arm64 --variant=minbase --cache-dir="${cache}/debs" \
	--include="$(echo "${base} ${stage}" | tr ' ' ',')" \
	"${suite}" "${root}" "${mirror}" || {
	tail -30 "${work}/debootstrap.log" >&2
	[ -f "${root}/debootstrap/debootstrap.log" ] && tail -30 "${root}/debootstrap/debootstrap.log" >&2
	exit 1
}
echo "build-rootfs: debootstrap took $(($(date +%s) - start)) s" >&2
# Where the time went: the slowest package configure steps (maintainer
# scripts, py3compile among them, all under qemu-user), from dpkg's log.
awk '$3 == "configure" { t[$4] = $1 " " $2 }
	$3 == "status" && $4 == "installed" && ($5 in t) {
		cmd = "date -d \"" t[$5] "\" +%s"; cmd | getline a; close(cmd)
		cmd = "date -d \"" $1 " " $2 "\" +%s"; cmd | getline b; close(cmd)
		total += b - a; printf "%d %s\n", b - a, $5; delete t[$5] }
	END { printf "%d (all configure steps)\n", total }' "${root}/var/log/dpkg.log" |
	sort -rn | head -8 | sed 's/^/build-rootfs: configure s: /' >&2 || true

mkdir -p "${root}/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=gzip\n' >"${root}/etc/initramfs-tools/conf.d/lablog-image-test"
echo "${modules}" | tr " " "\n" >"${root}/etc/initramfs-tools/modules"

mount -t proc proc "${root}/proc"
mount -t sysfs sysfs "${root}/sys"
mount --bind /dev "${root}/dev"
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
chmod 0755 "${root}/usr/sbin/policy-rc.d"
echo "build-rootfs: the arm64 kernel and its initramfs" >&2
quietly "${work}/kernel.log" chroot "${root}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold linux-image-arm64 || {
	tail -30 "${work}/kernel.log" >&2
	exit 1
}
rm -f "${root}/usr/sbin/policy-rc.d"
chroot "${root}" apt-get clean
for m in proc sys dev; do umount -l "${root}/${m}"; done
rm -rf "${root}/var/lib/apt/lists/"* "${root}/debootstrap"

tar -C "${root}" --numeric-owner --xattrs --xattrs-include='*' -cf "${tarball}.part" .
mv "${tarball}.part" "${tarball}"
echo "build-rootfs: built ${tarball} in $(($(date +%s) - start)) s" >&2
echo "${tarball}"
