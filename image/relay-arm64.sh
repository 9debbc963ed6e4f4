#!/usr/bin/env bash
# Prints the path of the linux/arm64 practable relay binary that the image
# ships as its relay host (/usr/local/bin/relay-host, run as `relay host`).
# Used by image/build-image.sh (make image) and image/test/run.sh (make
# image-test). The relay (github.com/practable/relay, GPL-3.0) is a separate
# program: it is built from its own source, never copied into lablog.
#
# The first of these that is set wins:
#   RELAY_HOST_BIN  a prebuilt linux/arm64 `relay` binary, used as it is
#   RELAY_SRC       a checkout of the relay, built here every time
#                   (`go build ./cmd/relay`; Go's build cache keeps it quick)
#   RELAY_TARBALL   a source tarball of the relay (one top folder holding
#                   cmd/relay), built once per tarball content and cached
#                   as RELAY_CACHE/relay-arm64-<sha256 of the tarball>.
#                   Default: the one tarball ../shared/relay/relay-src-*.tar.gz
#                   beside the repository, when there is one.
#   RELAY_CACHE     where tarball builds are kept (default
#                   ${XDG_CACHE_HOME:-$HOME/.cache}/lablog, beside the amd64
#                   relay of .ci/run)
#   GO              the go command (default go)
# Building needs Go and the Go module proxy (the relay's dependencies are
# ordinary modules). Messages go to stderr, the path alone to stdout.
# Beside a binary it builds it writes BIN.source, one line saying which
# source it came from, for the image's copyright notice (relay-copyright.sh).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
go=${GO:-go}
cache=${RELAY_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/lablog}
say() { echo "relay-arm64: $*" >&2; }
die() {
	say "$*"
	exit 2
}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
build() { # build MODULE_DIR OUT [go flags]: what ../shared/relay/build.sh does
	local dir=$1 out=$2
	shift 2
	(cd "${dir}" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 "${go}" build "$@" -trimpath -ldflags '-s -w' -o "${out}" ./cmd/relay)
}

if [ -n "${RELAY_HOST_BIN:-}" ]; then
	is_arm64 "${RELAY_HOST_BIN}" || die "RELAY_HOST_BIN=${RELAY_HOST_BIN} is not a linux/arm64 binary"
	say "prebuilt ${RELAY_HOST_BIN}"
	(cd "$(dirname "${RELAY_HOST_BIN}")" && echo "$(pwd)/$(basename "${RELAY_HOST_BIN}")")
	exit 0
fi

mkdir -p "${cache}"
cache=$(cd "${cache}" && pwd)
if [ -n "${RELAY_SRC:-}" ]; then
	[ -f "${RELAY_SRC}/cmd/relay/main.go" ] || die "RELAY_SRC=${RELAY_SRC} is not a relay checkout (no cmd/relay/main.go)"
	out="${cache}/relay-arm64-src"
	say "building ${RELAY_SRC} for linux/arm64"
	build "${RELAY_SRC}" "${out}"
	commit=$(git -C "${RELAY_SRC}" rev-parse HEAD 2>/dev/null || echo "unknown commit")
	echo "checkout $(cd "${RELAY_SRC}" && pwd), ${commit}" >"${out}.source"
	echo "${out}"
	exit 0
fi

tarball=${RELAY_TARBALL:-}
if [ -z "${tarball}" ]; then
	found=()
	for f in "${repo}"/../shared/relay/relay-src-*.tar.gz; do
		if [ -f "${f}" ]; then found+=("${f}"); fi
	done
	if [ "${#found[@]}" -eq 0 ]; then
		die "no relay: set RELAY_HOST_BIN (a linux/arm64 relay binary), RELAY_SRC (a checkout of github.com/practable/relay) or RELAY_TARBALL (its source tarball); none in ../shared/relay/"
	fi
	if [ "${#found[@]}" -gt 1 ]; then
		die "several tarballs in ../shared/relay/ (${found[*]}): set RELAY_TARBALL"
	fi
	tarball=${found[0]}
fi
[ -f "${tarball}" ] || die "RELAY_TARBALL=${tarball} does not exist (or set RELAY_HOST_BIN or RELAY_SRC)"
out="${cache}/relay-arm64-$(sha256sum "${tarball}" | cut -c1-16)"
# relay-src-<commit>.tar.gz names the relay commit it holds.
source_line="tarball $(basename "${tarball}") (sha256 $(sha256sum "${tarball}" | cut -d' ' -f1))"
if is_arm64 "${out}" && [ -x "${out}" ]; then
	say "cached ${out} (built from ${tarball})"
	echo "${source_line}" >"${out}.source"
	echo "${out}"
	exit 0
fi

start=$(date +%s)
say "building ${tarball} for linux/arm64 (once per tarball; about 1-2 min)"
tmp=$(mktemp -d "${cache}/relay-build.XXXXXX")
trap 'rm -rf "${tmp}"' EXIT
tar -xzf "${tarball}" -C "${tmp}"
main=$(find "${tmp}" -maxdepth 4 -path '*/cmd/relay/main.go' | head -1)
[ -n "${main}" ] || die "${tarball} holds no cmd/relay/main.go"
# -mod=mod: the tarball's go.sum may lack entries (its own folder, nothing else touched).
build "$(dirname "$(dirname "$(dirname "${main}")")")" "${tmp}/relay-arm64" -mod=mod
is_arm64 "${tmp}/relay-arm64" || die "the build of ${tarball} is not a linux/arm64 binary"
mv "${tmp}/relay-arm64" "${out}"
echo "${source_line}" >"${out}.source"
say "built ${out} in $(($(date +%s) - start)) s"
echo "${out}"
