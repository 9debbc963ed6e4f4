#!/usr/bin/env bash
# Assembles our pi-gen stage into OUT: image/stage-lablog plus, in
# 01-lablog/files/, lablog's arm64 Debian package (the same .deb an existing
# machine installs: binary, unit, user, folders), the arm64 relay host
# binary, rootfs-overlay/, its modes list and an optional site folder.
# `make image` copies OUT into pi-gen; `make image-test` applies the same
# OUT to its debootstrapped root.
#
# Environment:
#   OUT            stage folder to create (required; replaced)
#   LABLOG_DEB     lablog's arm64 package (default the one
#                  dist/lablog_*_arm64.deb of make deb)
#   LABLOG_HOST    lablog binary for this machine, to check SITE's config
#                  (default dist/lablog)
#   RELAY_HOST_BIN arm64 practable relay binary, the image's relay host
#                  (required; image/relay-arm64.sh finds or builds one)
#   SITE           a lablog/ config folder to bake into the image; optional
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
: "${OUT:?OUT must name the stage folder to create}"
host=${LABLOG_HOST:-${repo}/dist/lablog}
deb=${LABLOG_DEB:-}
if [ -z "${deb}" ]; then
	debs=("${repo}"/dist/lablog_*_arm64.deb)
	if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
		echo "assemble-stage: want one dist/lablog_*_arm64.deb, found: ${debs[*]} (make deb)" >&2
		exit 1
	fi
	deb=${debs[0]}
fi

relay=${RELAY_HOST_BIN:-}

if [ ! -x "${host}" ]; then
	echo "assemble-stage: ${host} missing (make build)" >&2
	exit 1
fi
if [ "$(dpkg-deb -f "${deb}" Package Architecture 2>/dev/null | tr '\n' ' ')" != "Package: lablog Architecture: arm64 " ]; then
	echo "assemble-stage: ${deb} is not lablog's arm64 package (make deb)" >&2
	exit 1
fi
if [ -z "${relay}" ] || [ ! -f "${relay}" ]; then
	echo "assemble-stage: RELAY_HOST_BIN (the arm64 relay host) missing: '${relay}' (image/relay-arm64.sh)" >&2
	exit 1
fi
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "${repo}/image/lib.sh"
if ! is_arm64 "${relay}"; then
	echo "assemble-stage: ${relay} is not an arm64 binary" >&2
	exit 1
fi

rm -rf "${OUT}"
mkdir -p "${OUT}"
cp -r "${repo}/image/stage-lablog/." "${OUT}/"
files="${OUT}/01-lablog/files"
mkdir -p "${files}"
# lablog comes as its Debian package, whose unit is `lablog install --print`'s.
install -m 0644 "${deb}" "${files}/lablog.deb"
install -m 0755 "${relay}" "${files}/relay-host"
# Its GPL notice and where its source is (the relay is not lablog's).
"${repo}/image/relay-copyright.sh" "${relay}" >"${files}/relay-host.copyright"
cp -r "${repo}/rootfs-overlay" "${files}/overlay"
install -m 0644 "${repo}/image/overlay.modes" "${files}/overlay.modes"
echo "assemble-stage: lablog from $(basename "${deb}")"

if [ -n "${SITE:-}" ]; then
	if [ ! -f "${SITE}/lablog.yaml" ]; then
		echo "assemble-stage: SITE=${SITE} has no lablog.yaml" >&2
		exit 1
	fi
	"${host}" config check "${SITE}/lablog.yaml"
	cp -r "${SITE}" "${files}/site"
fi
echo "assemble-stage: stage ready in ${OUT}"
