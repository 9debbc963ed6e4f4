#!/usr/bin/env bash
# Makes the signed updates the emulated image test drops into the card's
# lablog/update/ before the second boot (docs/updates.md, route 1), and the
# key the image trusts for them (run.sh hands it to the stand-in base stage,
# which puts it in /etc/lablog/update-keys as a technician would):
#
#   WORK/updates/image-test.pub   the trusted public key
#   WORK/updates/card/            the files for lablog/update/, tried in
#                                 order of name at boot:
#     lablog_99.0_arm64.deb(.sig)         good: this build's lablog as 99.0
#     lablog_99.1-forged_arm64.deb(.sig)  the bad package, signed by a key
#                                         the image does not trust: refused
#     lablog_99.2_arm64.deb(.sig)         bad: a lablog that exits at once
#                                         (tools/debpkg/testdata/badlablog):
#                                         rolled back to 99.0
#
# Usage: make-updates.sh WORK   (dist/lablog and dist/lablog-deb built: make deb)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out="${1:?usage: make-updates.sh WORK}/updates"
rm -rf "${out}"
mkdir -p "${out}/card" "${out}/bin"
cd "${repo}"
lablog=dist/lablog
version_var=github.com/practable/lablog/internal/platform/version.Version
export CGO_ENABLED=0

# gobuild VERSION GOARCH OUT: lablog of this tree, saying VERSION.
gobuild() {
	GOOS=linux GOARCH=$2 go build -trimpath -ldflags "-s -w -X ${version_var}=$1" -o "$3" ./cmd/lablog
}
# deb VERSION ARM64_BINARY HOST_BINARY: the arm64 package into WORK/updates/card.
deb() {
	dist/lablog-deb --describe "v$1" --maintainer "lablog image test <lablog@localhost>" \
		--host "$3" --binary "arm64=$2" --out "${out}/card" >/dev/null
}

"${lablog}" update keygen --out "${out}/image-test" --comment "lablog image test" >/dev/null
"${lablog}" update keygen --out "${out}/untrusted" --comment "a key the image does not trust" >/dev/null

gobuild v99.0 amd64 "${out}/bin/lablog-99.0"
gobuild v99.0 arm64 "${out}/bin/lablog-99.0-arm64"
deb 99.0 "${out}/bin/lablog-99.0-arm64" "${out}/bin/lablog-99.0"

gobuild v99.2 amd64 "${out}/bin/lablog-99.2"
GOOS=linux GOARCH=arm64 go build -C tools -trimpath -ldflags "-s -w -X main.version=v99.2" \
	-o "${out}/bin/badlablog-99.2-arm64" ./debpkg/testdata/badlablog
deb 99.2 "${out}/bin/badlablog-99.2-arm64" "${out}/bin/lablog-99.2"

"${lablog}" update sign --key "${out}/image-test.key" "${out}/card/lablog_99.0_arm64.deb" "${out}/card/lablog_99.2_arm64.deb" >/dev/null
cp "${out}/card/lablog_99.2_arm64.deb" "${out}/card/lablog_99.1-forged_arm64.deb"
"${lablog}" update sign --key "${out}/untrusted.key" "${out}/card/lablog_99.1-forged_arm64.deb" >/dev/null
rm -rf "${out:?}/bin" "${out:?}/untrusted.key"
ls "${out}/card" >&2
