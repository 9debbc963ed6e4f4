#!/usr/bin/env bash
# make image-test: the appliance image, emulated. Builds (or reuses) an arm64
# Debian root with debootstrap, applies our pi-gen stage and the overlay to
# it, makes the SD card and USB drive disk images, then boots them in
# qemu-system-aarch64 and checks them from this machine
# (internal/imagetest). Needs root (debootstrap, chroot, binfmt_misc).
#
# The guest runs the image's real relay host (the practable relay, arm64):
# RELAY_HOST_BIN, RELAY_SRC or RELAY_TARBALL (default the tarball in
# ../shared/relay beside the repository, built once per content and cached in
# RELAY_CACHE, default ~/.cache/lablog), as for make image: see
# image/relay-arm64.sh.
#
# Environment: LABLOG_IMAGE_CACHE (default /var/cache/lablog-image-test) for
# the cached root filesystem and the work folder; dist/lablog and lablog's
# arm64 package dist/lablog_*_arm64.deb must be built (the Makefile does it).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${LABLOG_IMAGE_CACHE:-/var/cache/lablog-image-test}
work="${cache}/work"
export LABLOG_IMAGE_CACHE="${cache}"
start=$(date +%s)
phase() { echo "image-test: $* ($(($(date +%s) - start)) s)"; }

if [ "$(id -u)" != 0 ]; then
	echo "image-test: needs root (debootstrap, chroot, binfmt_misc)" >&2
	exit 1
fi
for tool in debootstrap qemu-system-aarch64 qemu-aarch64-static update-binfmts mkfs.vfat mcopy mkfs.ext4 sfdisk ssh ssh-keygen rsync; do
	if ! command -v "${tool}" >/dev/null; then
		echo "image-test: ${tool} missing (.ci/run installs what is needed)" >&2
		exit 1
	fi
done

relay=$("${repo}/image/relay-arm64.sh")
phase "arm64 relay host ready"
tarball=$("${repo}/image/test/build-rootfs.sh")
phase "root filesystem ready"
mkdir -p "${work}"
OUT="${work}/stage" RELAY_HOST_BIN="${relay}" "${repo}/image/assemble-stage.sh"
"${repo}/image/test/make-disk.sh" "${tarball}" "${work}/stage" "${work}"
phase "disk images ready"
cd "${repo}"
LABLOG_IMAGE_WORK="${work}" LABLOG_BIN="${repo}/dist/lablog" \
	go test -count=1 -v -timeout 20m -run '^TestImage$' ./internal/imagetest
phase "passed"
