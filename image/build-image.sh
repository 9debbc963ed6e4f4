#!/usr/bin/env bash
# make image: builds the lablog SD card image with pi-gen.
#
#   RELAY_HOST_BIN=/path/to/relay make image            a prebuilt relay, or
#   RELAY_SRC=/path/to/relay-checkout make image        built here for arm64
#
# Environment:
#   RELAY_HOST_BIN  prebuilt linux/arm64 `relay` binary (practable relay; it
#                   runs as `relay host`). It is not on the Go module proxy,
#                   so one of RELAY_HOST_BIN or RELAY_SRC is required.
#   RELAY_SRC       a local checkout of the practable relay to build instead
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

if [ -z "${RELAY_HOST_BIN:-}" ] && [ -z "${RELAY_SRC:-}" ]; then
	echo "make image: set RELAY_HOST_BIN (a linux/arm64 practable relay binary) or RELAY_SRC (a checkout of it)" >&2
	exit 2
fi
mkdir -p "${build}"
relay="${build}/relay-linux-arm64"
if [ -n "${RELAY_HOST_BIN:-}" ]; then
	cp "${RELAY_HOST_BIN}" "${relay}"
elif [ -n "${RELAY_SRC:-}" ]; then
	(cd "${RELAY_SRC}" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -o "${relay}" ./cmd/relay)
fi
if [ "$(od -An -tx1 -j18 -N2 "${relay}" | tr -d ' ')" != "b700" ]; then
	echo "make image: ${relay} is not a linux/arm64 binary" >&2
	exit 2
fi

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
