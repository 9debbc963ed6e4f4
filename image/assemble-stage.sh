#!/usr/bin/env bash
# Assembles our pi-gen stage into OUT: image/stage-lablog plus, in
# 01-lablog/files/, the arm64 lablog binary, the arm64 relay host binary,
# rootfs-overlay/, its modes list, the lablog unit and an optional site
# folder. `make image` copies OUT into pi-gen; `make image-test` applies
# the same OUT to its debootstrapped root.
#
# Environment:
#   OUT            stage folder to create (required; replaced)
#   LABLOG_ARM64   arm64 lablog binary (default dist/lablog-linux-arm64)
#   LABLOG_HOST    lablog binary for this machine, to print the unit
#                  (default dist/lablog)
#   RELAY_HOST_BIN arm64 practable relay binary, the image's relay host
#                  (required; image/relay-arm64.sh finds or builds one)
#   SITE           a lablog/ config folder to bake into the image; optional
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
: "${OUT:?OUT must name the stage folder to create}"
arm64=${LABLOG_ARM64:-${repo}/dist/lablog-linux-arm64}
host=${LABLOG_HOST:-${repo}/dist/lablog}

relay=${RELAY_HOST_BIN:-}

for f in "${arm64}" "${host}"; do
	if [ ! -x "${f}" ]; then
		echo "assemble-stage: ${f} missing (make build build-arm64)" >&2
		exit 1
	fi
done
if [ -z "${relay}" ] || [ ! -f "${relay}" ]; then
	echo "assemble-stage: RELAY_HOST_BIN (the arm64 relay host) missing: '${relay}' (image/relay-arm64.sh)" >&2
	exit 1
fi
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "${repo}/image/lib.sh"
for f in "${arm64}" "${relay}"; do
	if ! is_arm64 "${f}"; then
		echo "assemble-stage: ${f} is not an arm64 binary" >&2
		exit 1
	fi
done

rm -rf "${OUT}"
mkdir -p "${OUT}"
cp -r "${repo}/image/stage-lablog/." "${OUT}/"
files="${OUT}/01-lablog/files"
mkdir -p "${files}"
install -m 0755 "${arm64}" "${files}/lablog"
install -m 0755 "${relay}" "${files}/relay-host"
cp -r "${repo}/rootfs-overlay" "${files}/overlay"
install -m 0644 "${repo}/image/overlay.modes" "${files}/overlay.modes"

# The lablog unit is the service package's (internal/service), rendered by
# `lablog install --print` for the image's default config, never a copy kept
# here: without it there is no image.
if ! "${host}" install --print --root "${repo}/rootfs-overlay" --config /etc/lablog/lablog.yaml \
	>"${files}/lablog.service" 2>"${OUT}/install-print.err"; then
	echo "assemble-stage: 'lablog install --print' failed: $(cat "${OUT}/install-print.err")" >&2
	rm -rf "${OUT}"
	exit 1
fi
if ! grep -q '^ExecStart=/usr/local/bin/lablog run --config /etc/lablog/lablog.yaml$' "${files}/lablog.service"; then
	echo "assemble-stage: the unit of 'lablog install --print' does not run lablog with /etc/lablog/lablog.yaml:" >&2
	cat "${files}/lablog.service" >&2
	rm -rf "${OUT}"
	exit 1
fi
echo "assemble-stage: lablog unit from 'lablog install --print'"

if [ -n "${SITE:-}" ]; then
	if [ ! -f "${SITE}/lablog.yaml" ]; then
		echo "assemble-stage: SITE=${SITE} has no lablog.yaml" >&2
		exit 1
	fi
	"${host}" config check "${SITE}/lablog.yaml"
	cp -r "${SITE}" "${files}/site"
fi
rm -f "${OUT}/install-print.err"
echo "assemble-stage: stage ready in ${OUT}"
