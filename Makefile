# lablog: the one entry point for building, testing and running.
# `make demo` records a simulated lab; `make test` runs every test.

# sudo's secure_path drops Go's folder: look where Go's own tarball puts it.
ifeq ($(shell command -v go),)
export PATH := $(PATH):/usr/local/go/bin
endif
GO        ?= go
PKG       := github.com/practable/lablog
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X $(PKG)/internal/platform/version.Version=$(VERSION)
GOFLAGS   := -trimpath
DUCKDB    := internal/testing/duckdbtest/node
# Packages whose tests also run under qemu-user for linux/arm64.
ARM64_PKGS ?= ./...

export CGO_ENABLED := 0

.PHONY: build build-arm64 build-failpoint deps-packages deps-inputs image-root-background test test-unit test-arm64 lint demo bench bench-arm64 bench-analytics bench-go fuzz deps deps-test clean image image-test image-test-cloud-init deb deb-test apt-repo

build:
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/lablog ./cmd/lablog

build-arm64:
	GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/lablog-linux-arm64 ./cmd/lablog

# A test build with the failpoints compiled in (docs/testing-failpoints.md),
# for crash tests by hand and the bench's slow-disk rows; never shipped.
build-failpoint:
	$(GO) build $(GOFLAGS) -tags failpoint -ldflags '$(LDFLAGS)' -o dist/lablog-failpoint ./cmd/lablog

# The independent Parquet reader (DuckDB through node) used by the tests.
deps-test: $(DUCKDB)/node_modules/.installed

$(DUCKDB)/node_modules/.installed: $(DUCKDB)/package.json $(DUCKDB)/package-lock.json
	cd $(DUCKDB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The real servers of the relay and S3 tests, built by make deps
# (.ci/inputs.sh) and cached; set either to use one built elsewhere.
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lablog
export VERSITYGW_BIN ?= $(CACHE)/versitygw
export RELAY_BIN ?= $(CACHE)/relay

# Everything make test needs: the Debian packages and arm64 programs run by
# the kernel (apt-get and binfmt_misc as root; the exact command to run
# otherwise, .ci/deps.sh), DuckDB from npm, and the real servers with lablog's
# own modules. The two halves run side by side: the first waits mostly on
# downloads and dpkg, the second compiles.
deps:
	@$(MAKE) --no-print-directory -j2 --output-sync=line deps-packages deps-inputs

deps-packages:
	@.ci/deps.sh
	@$(MAKE) --no-print-directory deps-test

deps-inputs:
	@.ci/inputs.sh
	@$(GO) mod download && $(GO) -C tools mod download

# Every test, in phases, each with a line before and after (elapsed time);
# the unit tests end with the count of skipped tests and why (testsummary).
PHASE := .ci/phase.sh
test:
	@$(PHASE) "dependencies" $(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory image-root-background
	@$(PHASE) "lint and build" $(MAKE) --no-print-directory lint build build-arm64 deb
	@$(PHASE) "unit tests" bash -o pipefail -c 'env LABLOG_REQUIRE_DUCKDB=1 LABLOG_REQUIRE_S3=1 LABLOG_REQUIRE_FAILPOINT=1 \
		$(GO) test -tags failpoint -json -count=1 -timeout 15m ./... | $(GO) run -C tools ./cmd/testsummary'
	@$(PHASE) "arm64 tests (qemu-user)" $(MAKE) --no-print-directory test-arm64
	@$(PHASE) "Debian packages (lintian, arm64 root)" $(MAKE) --no-print-directory deb-test
	@$(PHASE) "appliance image test (QEMU)" $(MAKE) --no-print-directory image-test

test-unit:
	$(GO) test -tags failpoint -count=1 -short ./...

# Cross-compiled test binaries run under Debian's qemu-user-static.
test-arm64:
	GOOS=linux GOARCH=arm64 LABLOG_TEST_EXEC=qemu-aarch64-static \
		$(GO) test -tags failpoint -count=1 -short -timeout 15m -exec qemu-aarch64-static $(ARM64_PKGS)

# staticcheck at a pinned version, fetched through the Go module proxy and
# cached by the go command; go.mod is not touched.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@out=$$(gofmt -l cmd internal tools); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags failpoint ./internal/platform/failpoint
	$(GO) vet -C tools ./...
	$(GO) run $(STATICCHECK) ./...

# Build first, saying so: the first compile takes a while and go run is silent.
# DEMO_FLAGS e.g. --duration 0 --streams 40.
demo:
	@echo "building lablog (dist/lablog)..."
	@$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/lablog ./cmd/lablog
	dist/lablog demo $(DEMO_FLAGS)

# The benchmark harness: the real binary on loopback websockets, one table
# (docs/performance.md). BENCH_FLAGS e.g. --runs 5 --only ingest,baseline.
bench: build build-failpoint
	dist/lablog bench --failpoint-binary dist/lablog-failpoint $(BENCH_FLAGS)

# The same harness built for arm64 and run under qemu-user, quick: a check
# that it works there and of relative costs, never a figure for a Pi.
bench-arm64: build-arm64
	qemu-aarch64-static dist/lablog-linux-arm64 bench --quick --exec qemu-aarch64-static \
		--binary dist/lablog-linux-arm64 $(BENCH_FLAGS)

# Learning analytics at scale (docs/performance.md, "Learning analytics at scale"): matrices of
# 1,000 users x 2,000 commands from an archive, then the binary's time and
# peak RSS over the same archive.
bench-analytics: build
	rm -rf /tmp/lablog-bench-analytics && mkdir -p /tmp/lablog-bench-analytics/archive
	LABLOG_BENCH_USERS=1000 LABLOG_BENCH_COMMANDS=2000 LABLOG_BENCH_ARCHIVE=/tmp/lablog-bench-analytics/archive \
		$(GO) test -run '^$$' -bench ArchiveMatrices -benchtime 3x -timeout 30m ./internal/analytics
	/usr/bin/time -f 'lablog analytics: %e s wall, %U s user, %S s sys, max RSS %M KiB' \
		dist/lablog analytics --archive /tmp/lablog-bench-analytics/archive --out /tmp/lablog-bench-analytics/out

# The go test micro benchmarks of the packages.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime 60s ./internal/record/frame
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/record/statement
	$(GO) test -run '^$$' -fuzz FuzzStatementEnvelope -fuzztime 30s ./internal/record/frame
	$(GO) test -run '^$$' -fuzz FuzzCompactStruct -fuzztime 30s ./internal/publish/archive

# The appliance, emulated: pi-gen's own build.sh (../shared/pi-gen) runs our
# stage and its export over a debootstrapped arm64 Debian root (cached under
# LABLOG_IMAGE_CACHE) standing in for its stages 0-2; the image boots in
# qemu-system-aarch64 with the real arm64 relay host (image/relay-arm64.sh,
# as for make image) and is checked from here (image/test/run.sh; root only).
image-test: build build-arm64 deb
	image/test/run.sh

# The image test with cloud-init in its root, for Raspberry Pi Imager's
# settings (hostname, user and SSH key, an invalid user-data): a root that
# takes 60% more CPU to build and boots 40-100 s slower, so not in make test
# (docs/testing.md).
image-test-cloud-init:
	LABLOG_IMAGE_CLOUD_INIT=1 $(MAKE) --no-print-directory image-test

# The image test's arm64 root, built while the other phases run (as root;
# most of a first build waits on downloads and emulation); the image test
# waits for it. Its log: dist/build-rootfs.log.
image-root-background:
	@if [ "$$(id -u)" = 0 ]; then mkdir -p dist; \
		echo "image test's root: building in the background (dist/build-rootfs.log)"; \
		setsid image/test/build-rootfs.sh >dist/build-rootfs.log 2>&1 </dev/null & fi

# The SD card image, with pi-gen (image/build-image.sh; see docs/appliance.md,
# "Build the image"). Its relay host: RELAY_HOST_BIN (a prebuilt arm64 practable
# relay), RELAY_SRC (a checkout) or RELAY_TARBALL (a source tarball; default
# ../shared/relay/relay-src-*.tar.gz), built for arm64 by image/relay-arm64.sh;
# PIGEN_DIR may point at a local pi-gen checkout; SITE at a lablog/ config
# folder to bake in.
image: build build-arm64 deb
	image/build-image.sh

# The Debian packages dist/lablog_<version>_amd64.deb and _arm64.deb, built
# by tools/cmd/lablog-deb with nfpm (tools/ is its own Go module, so the
# packager's dependencies stay out of the daemon's go.mod). The version is
# git describe's, made a Debian one (tools/debpkg/version.go).
DEB_COMMITS    = $(shell git rev-list --count HEAD 2>/dev/null || echo 0)
DEB_DATE       = $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
# The package's Maintainer (and changelog signature): the project, not
# whoever made the last commit.
DEB_MAINTAINER ?= lablog maintainers <lablog@practable.io>
# Public keys (lablog update keygen's NAME.pub, space-separated) that the
# packaged lablog trusts for signed updates (docs/updates.md).
DEB_UPDATE_KEYS ?=
deb: build build-arm64
	$(GO) build -C tools -o ../dist/lablog-deb ./cmd/lablog-deb
	rm -f dist/lablog_*.deb
	dist/lablog-deb --describe '$(VERSION)' --commits $(DEB_COMMITS) --date $(DEB_DATE) \
		--maintainer '$(DEB_MAINTAINER)' $(foreach k,$(DEB_UPDATE_KEYS),--update-key '$(k)') --binary amd64=dist/lablog --binary arm64=dist/lablog-linux-arm64

# A signed apt repository of the packages of make deb, added to APT_DIR
# (older versions stay in its pool), to copy to any static web host or S3
# bucket (docs/updates.md). APT_KEY: the gpg key that signs (id or
# address, in GNUPGHOME); machines trust APT_DIR/lablog-archive-keyring.gpg.
APT_DIR   ?= dist/apt
APT_SUITE ?= stable
APT_KEY   ?=
apt-repo: deb
	@if [ -z '$(APT_KEY)' ]; then echo "make apt-repo: set APT_KEY to the gpg key that signs (gpg --list-secret-keys)"; exit 2; fi
	$(GO) build -C tools -o ../dist/lablog-aptrepo ./cmd/lablog-aptrepo
	dist/lablog-aptrepo --dir '$(APT_DIR)' --suite '$(APT_SUITE)' --key '$(APT_KEY)' dist/lablog_*.deb

# The packaging tests: scripts, versions, lintian on both packages, and the
# arm64 package installed, upgraded and purged in the arm64 root of make
# image-test (built and cached by image/test/build-rootfs.sh; root only:
# without root the tests that need it skip and say so).
deb-test:
	@rootfs=""; if [ "$$(id -u)" = 0 ]; then rootfs=$$(image/test/build-rootfs.sh); fi; \
		echo "LABLOG_DEB_ROOTFS=$$rootfs"; \
		LABLOG_DEB_ROOTFS="$$rootfs" LABLOG_DEB_DIR=$(CURDIR)/dist $(GO) test -C tools -count=1 -timeout 10m ./...

clean:
	rm -rf dist lablog-demo
