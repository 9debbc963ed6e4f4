#!/usr/bin/env bash
# make image-test: the appliance image, built by pi-gen and emulated.
#
# 1. An arm64 Debian root filesystem, debootstrapped and cached
#    (build-rootfs.sh): the stand-in for the root of pi-gen's stages 0-2,
#    which come from the Raspberry Pi archive this test cannot reach.
# 2. pi-gen's own build.sh (the pinned release, from LABLOG_PIGEN_TARBALL,
#    default ../shared/pi-gen/pi-gen-*.tar.gz beside the repository),
#    started by image/build-image.sh exactly as `make image` does without
#    Docker, with STAGE_LIST = a stand-in base stage (image/test/stage-base
#    over that root, plus pi-gen's stage1 sub-stages that run offline) and
#    our stage; pi-gen's export-image then makes the image. The two
#    export steps that need the Raspberry Pi archive are left out (below).
# 3. The disks (make-disk.sh): that image with the test's config folder on
#    its boot partition, and a LABLOG drive.
# 4. Two boots in qemu-system-aarch64, checked from this machine
#    (internal/e2e/image, TestImage); before the second, signed updates
#    (make-updates.sh, with the key the image trusts) and new cloud-init
#    seed files go onto the card.
#
# Needs root (debootstrap, chroot, loop devices, binfmt_misc) and pi-gen's
# build-host packages (docs/appliance.md, "Build the image").
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
for tool in debootstrap qemu-system-aarch64 qemu-aarch64-static update-binfmts mkfs.vfat mcopy mkfs.ext4 sfdisk partx debugfs ssh ssh-keygen rsync; do
	if ! command -v "${tool}" >/dev/null; then
		echo "image-test: ${tool} missing (.ci/run installs what is needed)" >&2
		exit 1
	fi
done

pigen_tarball=${LABLOG_PIGEN_TARBALL:-}
if [ -z "${pigen_tarball}" ]; then
	for f in "${repo}"/../shared/pi-gen/pi-gen-*.tar.gz; do pigen_tarball=${f}; done
fi
if [ ! -f "${pigen_tarball}" ]; then
	echo "image-test: no pi-gen tarball (LABLOG_PIGEN_TARBALL, or ../shared/pi-gen/pi-gen-*.tar.gz)" >&2
	exit 1
fi

relay=$("${repo}/image/relay-arm64.sh")
phase "arm64 relay host ready"
tarball=$("${repo}/image/test/build-rootfs.sh")
phase "root filesystem ready"
mkdir -p "${work}"
"${repo}/image/test/make-updates.sh" "${work}"
phase "signed updates built"

# A fresh pi-gen tree, the stand-in base stage in it.
mkdir -p "${work}"
pigen="${work}/pi-gen"
# Nothing may stay mounted in a tree that is removed (on_chroot binds /dev).
clear_tree() {
	awk -v d="$1/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "${m}"; done
	rm -rf --one-file-system "$1"
}
clear_tree "${pigen}"
rm -rf "${work}/deploy"
tar -C "${work}" -xzf "${pigen_tarball}"
base="${pigen}/stage-test-base"
cp -r "${repo}/image/test/stage-base" "${base}"
# pi-gen's stage1 steps that run offline, unchanged: the boot files
# (cmdline.txt with `resize`, config.txt) and fstab with the first user
# (not their package lists: raspi-config; nor the .bashrc patch).
cp -r "${pigen}/stage1/00-boot-files" "${base}/00-boot-files"
mkdir -p "${base}/01-sys-tweaks"
cp -r "${pigen}/stage1/01-sys-tweaks/00-run.sh" "${pigen}/stage1/01-sys-tweaks/files" "${base}/01-sys-tweaks/"
# stage2's cloud-init sub-stage, its run step unchanged (with
# ENABLE_CLOUD_INIT=1 it puts the seed files meta-data, user-data and
# network-config on the boot partition); not its package list: cloud-init
# is in the root already, rpi-cloud-init-mods is the Raspberry Pi archive's.
mkdir -p "${base}/04-cloud-init"
cp -r "${pigen}/stage2/04-cloud-init/01-run.sh" "${pigen}/stage2/04-cloud-init/files" "${base}/04-cloud-init/"
# export-image steps that need the Raspberry Pi archive: 01-user-rename's
# package (userconf-pi; its run step stays) and 02-set-sources (apt-get
# update and dist-upgrade against the archive).
rm "${pigen}/export-image/01-user-rename/00-packages"
touch "${pigen}/export-image/02-set-sources/SKIP"
cat >"${work}/pigen-test.config" <<'CONFIG'
STAGE_LIST="stage-test-base stage-lablog"
# The image is used right away: not compressed (pi-gen copies the .img to
# deploy/; with xz, even at level 0, compressing the 2.2 GB image took 4 of
# the 7.5 min pi-gen took on a busy 2-core machine).
DEPLOY_COMPRESSION=none
CONFIG
# Where this machine's kernel lacks what pi-gen's export-image uses (reading
# a loop device's partition table, vfat), image/test/pigen-shims stands in.
PATH="${repo}/image/test/pigen-shims:${PATH}" \
	LABLOG_TEST_ROOTFS="${tarball}" LABLOG_TEST_DIR="${repo}/image/test" \
	LABLOG_TEST_UPDATE_KEY="${work}/updates/image-test.pub" \
	PIGEN_DIR="${pigen}" PIGEN_DOCKER=0 DEPLOY="${work}/deploy" PIGEN_CONFIG_EXTRA="${work}/pigen-test.config" \
	RELAY_HOST_BIN="${relay}" "${repo}/image/build-image.sh" >"${work}/pi-gen.log" 2>&1 || {
	tail -40 "${work}/pi-gen.log" >&2
	echo "image-test: pi-gen failed; its log: ${work}/pi-gen.log" >&2
	exit 1
}
image=$(find "${work}/deploy" -name '*lablog*.img' | head -1)
phase "pi-gen built ${image##*/} ($(($(stat -c %s "${image}") >> 20)) MiB)"
clear_tree "${pigen}/work" # the stages' root filesystems

"${repo}/image/test/make-disk.sh" "${image}" "${work}"
phase "disk images ready"
# Flush the gigabytes pi-gen and the disks left dirty before the boots, not
# during them: QEMU writes the guest's serial console from a vCPU holding its
# big lock, so a write throttled behind that writeback stalls every vCPU.
sync
phase "written back to disk"
cd "${repo}"
LABLOG_IMAGE_WORK="${work}" LABLOG_BIN="${repo}/dist/lablog" \
	go test -count=1 -v -timeout 45m -run '^TestImage$' ./internal/e2e/image
phase "passed"
