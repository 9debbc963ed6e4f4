#!/usr/bin/env bash
# Assembles our pi-gen stage into OUT: image/stage-lablog plus, in
# 01-lablog/files/, the arm64 lablog binary, the relay host binary (when
# given), rootfs-overlay/, its modes list, the lablog unit and an optional
# site folder. `make image` copies OUT into pi-gen; `make image-test` applies
# the same OUT to its debootstrapped root.
#
# Environment:
#   OUT            stage folder to create (required; replaced)
#   LABLOG_ARM64   arm64 lablog binary (default dist/lablog-linux-arm64)
#   LABLOG_HOST    lablog binary for this machine, to print the unit
#                  (default dist/lablog)
#   RELAY_HOST_BIN prebuilt arm64 relay binary (practable relay); optional here
#   SITE           a lablog/ config folder to bake into the image; optional
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
: "${OUT:?OUT must name the stage folder to create}"
arm64=${LABLOG_ARM64:-${repo}/dist/lablog-linux-arm64}
host=${LABLOG_HOST:-${repo}/dist/lablog}

for f in "${arm64}" "${host}"; do
	if [ ! -x "${f}" ]; then
		echo "assemble-stage: ${f} missing (make build build-arm64)" >&2
		exit 1
	fi
done
# ELF e_machine (bytes 18-19) of an arm64 binary is 0xb7 0x00.
if [ "$(od -An -tx1 -j18 -N2 "${arm64}" | tr -d ' ')" != "b700" ]; then
	echo "assemble-stage: ${arm64} is not an arm64 binary" >&2
	exit 1
fi

rm -rf "${OUT}"
mkdir -p "${OUT}"
cp -r "${repo}/image/stage-lablog/." "${OUT}/"
files="${OUT}/01-lablog/files"
mkdir -p "${files}"
install -m 0755 "${arm64}" "${files}/lablog"
if [ -n "${RELAY_HOST_BIN:-}" ]; then
	install -m 0755 "${RELAY_HOST_BIN}" "${files}/relay-host"
fi
cp -r "${repo}/rootfs-overlay" "${files}/overlay"
install -m 0644 "${repo}/image/overlay.modes" "${files}/overlay.modes"

# The lablog unit is the service package's, never a copy kept here.
# INTEGRATION POINT (issue 4): `lablog install --print --root` renders it
# from internal/service/lablog.service.tmpl for the image's default config.
# Should that command be missing, the golden rendering of the same template
# for the default configuration is used, loudly.
if "${host}" install --print --root "${repo}/rootfs-overlay" --config /etc/lablog/lablog.yaml \
	>"${files}/lablog.service" 2>"${OUT}/install-print.err" &&
	grep -q '^ExecStart=/usr/local/bin/lablog run --config /etc/lablog/lablog.yaml$' "${files}/lablog.service"; then
	echo "assemble-stage: lablog unit from 'lablog install --print'"
elif [ -f "${repo}/internal/service/testdata/lablog.service" ]; then
	echo "assemble-stage: WARNING: 'lablog install --print' failed ($(cat "${OUT}/install-print.err")); using internal/service/testdata/lablog.service" >&2
	cp "${repo}/internal/service/testdata/lablog.service" "${files}/lablog.service"
else
	echo "assemble-stage: cannot obtain the lablog unit from internal/service" >&2
	exit 1
fi

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
