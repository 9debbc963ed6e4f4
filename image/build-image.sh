#!/usr/bin/env bash
# make image: builds the lablog SD card image with pi-gen.
#
#   make image                                        relay from ../shared/relay
#   RELAY_TARBALL=/path/to/relay-src.tar.gz make image
#   RELAY_SRC=/path/to/relay-checkout make image
#   RELAY_HOST_BIN=/path/to/relay-linux-arm64 make image
#
# Environment:
#   The relay host the image ships (the practable relay, `relay host`; not on
#   the Go module proxy), from the first of these that is set (see
#   image/relay-arm64.sh):
#   RELAY_HOST_BIN  a prebuilt linux/arm64 `relay` binary
#   RELAY_SRC       a checkout of github.com/practable/relay, built for arm64
#   RELAY_TARBALL   its source tarball, built for arm64 once per content and
#                   cached in RELAY_CACHE (default ~/.cache/lablog); default
#                   ../shared/relay/relay-src-*.tar.gz beside the repository
#   PIGEN_DIR       a local pi-gen checkout (default: clone PIGEN_REPO at
#                   PIGEN_REF into image/build/pi-gen)
#   PIGEN_REF       pi-gen tag or commit (default below: the release of the
#                   Raspberry Pi OS the image is based on)
#   SITE            a lablog/ config folder to bake into the image
#   ADMIN_PUBKEY    an SSH public key for the admin account, baked in (keys
#                   on the boot partition work without it)
#   PIGEN_DOCKER    1 (default when docker is available) to use pi-gen's
#                   build-docker.sh, 0 for build.sh on this machine
#   DEPLOY          where the image lands (default image/deploy/)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build="${repo}/image/build"
PIGEN_REPO=${PIGEN_REPO:-https://github.com/RPi-Distro/pi-gen.git}
PIGEN_REF=${PIGEN_REF:-2026-06-18-raspios-trixie-arm64}

mkdir -p "${build}"
# The arm64 relay first: without it there is no image to build.
relay=$("${repo}/image/relay-arm64.sh") || {
	echo "make image: no linux/arm64 relay (set RELAY_HOST_BIN, RELAY_SRC or RELAY_TARBALL)" >&2
	exit 2
}

if [ -z "${PIGEN_DIR:-}" ]; then
	PIGEN_DIR="${build}/pi-gen"
	if [ ! -d "${PIGEN_DIR}/.git" ]; then
		git clone --quiet "${PIGEN_REPO}" "${PIGEN_DIR}"
	fi
	git -C "${PIGEN_DIR}" fetch --quiet --tags origin
	git -C "${PIGEN_DIR}" checkout --quiet --force "${PIGEN_REF}"
fi
PIGEN_DIR=$(cd "${PIGEN_DIR}" && pwd)

# Our stage, with everything it installs, inside the pi-gen tree (the Docker
# build sees only that tree).
OUT="${PIGEN_DIR}/stage-lablog" RELAY_HOST_BIN="${relay}" SITE="${SITE:-}" "${repo}/image/assemble-stage.sh"
touch "${PIGEN_DIR}/stage2/SKIP_IMAGES" # only our stage is exported

# pi-gen refuses DISABLE_FIRST_BOOT_USER_RENAME without a password and
# PUBKEY_ONLY_SSH without a key: give it a random password (our stage locks
# it) and the admin key, or a comment line (keys then come from the card).
pass=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
key=${ADMIN_PUBKEY:-"# keys: lablog/authorized_keys on the boot partition"}
{
	cat "${repo}/pi-gen-config/config"
	printf '\n# Added by image/build-image.sh\n'
	printf 'FIRST_USER_PASS=%q\n' "${pass}"
	printf 'PUBKEY_SSH_FIRST_USER=%q\n' "${key}"
	printf 'DEPLOY_DIR=%q\n' "${PIGEN_DIR}/deploy"
} >"${PIGEN_DIR}/config"

cd "${PIGEN_DIR}"
docker=${PIGEN_DOCKER:-}
if [ -z "${docker}" ]; then
	docker=0
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then docker=1; fi
fi
if [ "${docker}" = 1 ]; then
	./build-docker.sh
else
	if [ "$(id -u)" != 0 ]; then
		echo "make image: pi-gen's build.sh needs root (or use Docker)" >&2
		exit 2
	fi
	./build.sh
fi
deploy=${DEPLOY:-${repo}/image/deploy}
mkdir -p "${deploy}"
cp -v "${PIGEN_DIR}"/deploy/*lablog*.img.xz "${deploy}/"
