# lablog: the one entry point for building, testing and running.
# `make demo` records a simulated lab; `make test` runs every test.

GO        ?= go
PKG       := github.com/practable/lablog
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X $(PKG)/internal/version.Version=$(VERSION)
GOFLAGS   := -trimpath
DUCKDB    := internal/duckdbtest/node
# Packages whose tests also run under qemu-user for linux/arm64.
ARM64_PKGS ?= ./...

export CGO_ENABLED := 0

.PHONY: build build-arm64 test test-unit test-arm64 lint demo bench bench-arm64 bench-go fuzz deps deps-test clean image image-test

build:
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/lablog ./cmd/lablog

build-arm64:
	GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/lablog-linux-arm64 ./cmd/lablog

# The independent Parquet reader (DuckDB through node) used by the tests.
deps-test: $(DUCKDB)/node_modules/.installed

$(DUCKDB)/node_modules/.installed: $(DUCKDB)/package.json $(DUCKDB)/package-lock.json
	cd $(DUCKDB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Everything make test needs: the Debian packages (apt-get as root; the
# exact command to run otherwise, .ci/deps.sh), then DuckDB from npm.
deps:
	@.ci/deps.sh
	@$(MAKE) --no-print-directory deps-test

# Every test, in phases, each with a line before and after (elapsed time).
PHASE := .ci/phase.sh
test:
	@$(PHASE) "dependencies" $(MAKE) --no-print-directory deps
	@$(PHASE) "lint and build" $(MAKE) --no-print-directory lint build build-arm64
	@$(PHASE) "unit tests" env LABLOG_REQUIRE_DUCKDB=1 $(GO) test -count=1 -timeout 15m ./...
	@$(PHASE) "arm64 tests (qemu-user)" $(MAKE) --no-print-directory test-arm64
	@$(PHASE) "appliance image test (QEMU)" $(MAKE) --no-print-directory image-test

test-unit:
	$(GO) test -count=1 -short ./...

# Cross-compiled test binaries run under Debian's qemu-user-static.
test-arm64:
	GOOS=linux GOARCH=arm64 LABLOG_TEST_EXEC=qemu-aarch64-static \
		$(GO) test -count=1 -short -timeout 15m -exec qemu-aarch64-static $(ARM64_PKGS)

lint:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Build first, saying so: the first compile takes a while and go run is silent.
# DEMO_FLAGS e.g. --duration 0 --streams 40.
demo:
	@echo "building lablog (dist/lablog)..."
	@$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o dist/lablog ./cmd/lablog
	dist/lablog demo $(DEMO_FLAGS)

# The benchmark harness: the real binary on loopback websockets, one table
# (README, "Performance"). BENCH_FLAGS e.g. --runs 5 --only ingest,baseline.
bench: build
	dist/lablog bench $(BENCH_FLAGS)

# The same harness built for arm64 and run under qemu-user, quick: a check
# that it works there and of relative costs, never a figure for a Pi.
bench-arm64: build-arm64
	qemu-aarch64-static dist/lablog-linux-arm64 bench --quick --exec qemu-aarch64-static \
		--binary dist/lablog-linux-arm64 $(BENCH_FLAGS)

# The go test micro benchmarks of the packages.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime 60s ./internal/frame

# The appliance, emulated: pi-gen's own build.sh (../shared/pi-gen) runs our
# stage and its export over a debootstrapped arm64 Debian root (cached under
# LABLOG_IMAGE_CACHE) standing in for its stages 0-2; the image boots in
# qemu-system-aarch64 with the real arm64 relay host (image/relay-arm64.sh,
# as for make image) and is checked from here (image/test/run.sh; root only).
image-test: build build-arm64
	image/test/run.sh

# The SD card image, with pi-gen (image/build-image.sh; see README,
# "Appliance"). Its relay host: RELAY_HOST_BIN (a prebuilt arm64 practable
# relay), RELAY_SRC (a checkout) or RELAY_TARBALL (a source tarball; default
# ../shared/relay/relay-src-*.tar.gz), built for arm64 by image/relay-arm64.sh;
# PIGEN_DIR may point at a local pi-gen checkout; SITE at a lablog/ config
# folder to bake in.
image: build build-arm64
	image/build-image.sh

clean:
	rm -rf dist lablog-demo
