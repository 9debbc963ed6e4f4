#!/usr/bin/env bash
# make test's external inputs, each from one place, checked (and built once
# and cached) by make deps so a missing one stops the run at its start with
# the instruction, not after the long phases. The servers' paths come from
# the Makefile, in the environment:
#   VERSITYGW_BIN  versitygw, the S3 server of internal/cloud/upload and cmd/lablog,
#                  at the version internal/testing/s3test is written against
#                  (go install through the Go module proxy; a few minutes).
#   RELAY_BIN      the practable relay of internal/e2e/relay, built from
#                  RELAY_SRC (a checkout of github.com/practable/relay) when
#                  set, else from the tarball in ../shared/relay beside the
#                  repository (once per tarball), else used as it is.
# pi-gen (the image tests): LABLOG_PIGEN_TARBALL, else the one tarball in
# ../shared/pi-gen. The learning-analytics fixtures: ../shared/fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSITYGW_BIN:?} ${RELAY_BIN:?}"
go=${GO:-go}

version=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' internal/testing/s3test/s3test.go)
if [ ! -x "${VERSITYGW_BIN}" ] || [ "$(cat "${VERSITYGW_BIN}.version" 2>/dev/null)" != "${version}" ]; then
	echo "inputs: building versitygw ${version} (once; a few minutes)"
	gobin=$(mktemp -d)
	GOFLAGS='' GOBIN="${gobin}" nice "${go}" install "github.com/versity/versitygw/cmd/versitygw@${version}"
	mkdir -p "$(dirname "${VERSITYGW_BIN}")"
	mv "${gobin}/versitygw" "${VERSITYGW_BIN}"
	rmdir "${gobin}"
	echo "${version}" >"${VERSITYGW_BIN}.version"
fi
echo "inputs: versitygw ${VERSITYGW_BIN}"

mkdir -p "$(dirname "${RELAY_BIN}")"
tarballs=(../shared/relay/relay-src-*.tar.gz)
if [ -n "${RELAY_SRC:-}" ]; then
	[ -f "${RELAY_SRC}/cmd/relay/main.go" ] || {
		echo "inputs: RELAY_SRC=${RELAY_SRC} is not a relay checkout (no cmd/relay/main.go)" >&2
		exit 1
	}
	(cd "${RELAY_SRC}" && CGO_ENABLED=0 "${go}" build -trimpath -o "${RELAY_BIN}" ./cmd/relay)
	echo "inputs: relay ${RELAY_BIN} (built from ${RELAY_SRC})"
elif [ -f "${tarballs[0]}" ]; then
	sum=$(sha256sum "${tarballs[0]}" | cut -d' ' -f1)
	if [ ! -x "${RELAY_BIN}" ] || [ "$(cat "${RELAY_BIN}.source" 2>/dev/null)" != "${sum}" ]; then
		echo "inputs: building the relay from ${tarballs[0]} (once per tarball)"
		../shared/relay/build.sh "${RELAY_BIN}"
		echo "${sum}" >"${RELAY_BIN}.source"
	fi
	echo "inputs: relay ${RELAY_BIN} (from ${tarballs[0]})"
elif [ -x "${RELAY_BIN}" ]; then
	echo "inputs: relay ${RELAY_BIN} (prebuilt)"
else
	echo "inputs: no practable relay for internal/e2e/relay's tests: set RELAY_SRC to a checkout of" >&2
	echo "  https://github.com/practable/relay (git clone https://github.com/practable/relay)," >&2
	echo "  or RELAY_BIN to a built relay, then run make deps again" >&2
	exit 1
fi

found=(../shared/pi-gen/pi-gen-*.tar.gz)
pigen=${LABLOG_PIGEN_TARBALL:-${found[0]}}
if [ ! -f "${pigen}" ]; then
	echo "inputs: no pi-gen for the image tests: make a tarball of its release and name it, e.g." >&2
	echo "  git clone --depth 1 --branch 2026-06-18-raspios-trixie-arm64 https://github.com/RPi-Distro/pi-gen" >&2
	echo "  tar czf pi-gen.tar.gz pi-gen && export LABLOG_PIGEN_TARBALL=\$PWD/pi-gen.tar.gz" >&2
	exit 1
fi
echo "inputs: pi-gen ${pigen}"
fixtures=../shared/fixtures/learning-analytics
if [ ! -d "${fixtures}" ]; then
	echo "inputs: no learning-analytics fixtures for the analytics tests: put them (this project's" >&2
	echo "  shared folder) at $(cd .. && pwd)/shared/fixtures/learning-analytics" >&2
	exit 1
fi
echo "inputs: learning-analytics fixtures ${fixtures}"
