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
#   PIGEN_CONTAINER the Docker route's container name (default pigen_work)
#   PIGEN_CONFIG_EXTRA  a file appended to pi-gen's config last (tests: a
#                   shorter STAGE_LIST, a faster COMPRESSION_LEVEL)
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
# Stage 2's cloud-init sub-stage runs as in Raspberry Pi OS (cloud-init,
# rpi-cloud-init-mods, the seed files on the boot partition: ENABLE_CLOUD_INIT=1
# in pi-gen-config/config), so Raspberry Pi Imager's customisation applies.
# A SKIP left there by an older build of ours would leave it out.
rm -f "${PIGEN_DIR}/stage2/04-cloud-init/SKIP"

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
	# No DEPLOY_DIR: pi-gen's default, deploy/ in its own tree, is the one
	# folder build-docker.sh copies out of the container.
	if [ -n "${PIGEN_CONFIG_EXTRA:-}" ]; then
		printf '\n# From PIGEN_CONFIG_EXTRA (%s)\n' "${PIGEN_CONFIG_EXTRA}"
		cat "${PIGEN_CONFIG_EXTRA}"
	fi
} >"${PIGEN_DIR}/config"
# pi-gen records its own commit; a PIGEN_DIR that is no git checkout has none.
GIT_HASH=$(git -C "${PIGEN_DIR}" rev-parse HEAD 2>/dev/null || echo "${PIGEN_REF}")
export GIT_HASH

cd "${PIGEN_DIR}"
# Only this build's image is delivered.
rm -f deploy/*lablog*.img*
docker=${PIGEN_DOCKER:-}
if [ -z "${docker}" ]; then
	docker=0
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then docker=1; fi
fi
if [ "${docker}" = 1 ]; then
	# build-docker.sh leaves its container behind when the build fails, and
	# then refuses to start until it is removed: remove one left by an
	# earlier build of ours, and ours when this build fails (its log kept).
	export CONTAINER_NAME=${PIGEN_CONTAINER:-pigen_work}
	# On x86_64 build-docker.sh registers `which qemu-aarch64` with binfmt_misc
	# (flag F) ahead of any other entry; a dynamically linked one (Debian 12's
	# qemu-user) then cannot start inside the build's arm64 chroot.
	case $(uname -m) in
	aarch64 | arm*) ;;
	*)
		qemu=$(command -v qemu-aarch64 || true)
		if [ -z "${qemu}" ] || file -L "${qemu}" | grep -q 'dynamically linked'; then
			echo "make image: Docker route needs a static qemu-aarch64 on PATH, found '${qemu}'" >&2
			echo "  (Debian 13: apt-get install qemu-user qemu-user-binfmt; Debian 12: apt-get install" >&2
			echo "  qemu-user-static binfmt-support && ln -s /usr/bin/qemu-aarch64-static /usr/local/bin/qemu-aarch64)" >&2
			exit 2
		fi
		;;
	esac
	if running=$(docker container inspect -f '{{.State.Running}}' "${CONTAINER_NAME}" 2>/dev/null); then
		if [ "${running}" = true ]; then
			echo "make image: container ${CONTAINER_NAME} is running a build; wait for it or docker rm -f ${CONTAINER_NAME}" >&2
			exit 1
		fi
		echo "make image: removing container ${CONTAINER_NAME} left by an earlier build" >&2
		docker rm -v "${CONTAINER_NAME}" >/dev/null
	fi
	if ! ./build-docker.sh; then
		log="${PIGEN_DIR}/build-docker-failed.log"
		docker logs --timestamps "${CONTAINER_NAME}" >"${log}" 2>&1 || true
		docker rm -v "${CONTAINER_NAME}" >/dev/null 2>&1 || true
		echo "make image: pi-gen failed in Docker; its log: ${log}" >&2
		exit 1
	fi
else
	if [ "$(id -u)" != 0 ]; then
		echo "make image: pi-gen's build.sh needs root (or use Docker)" >&2
		exit 2
	fi
	./build.sh
fi
deploy=${DEPLOY:-${repo}/image/deploy}
mkdir -p "${deploy}"
# The image as DEPLOY_COMPRESSION packs it (xz in pi-gen-config/config).
cp -v --sparse=always "${PIGEN_DIR}"/deploy/*lablog*.img* "${deploy}/"
