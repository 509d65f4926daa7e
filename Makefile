# Popcast: `make up` runs the all-in-one, `make test` runs every check. Both install what
# the machine lacks first (Debian packages via scripts/install-system-deps.sh; npm and PyPI
# packages for the test clients).

CARGO ?= cargo
SHELL := /bin/bash
# rustup puts cargo in ~/.cargo/bin, which non-interactive shells may lack.
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Steps depend on order (install before build, lint before tests).
.NOTPARALLEL:
FUZZ_SECONDS ?= 30

.PHONY: up test deps deps-test deps-bench deps-browser deps-web deps-h3client deps-ical deps-whip deps-whip toolchain build-release lint web-check player unit-tests browser-selftest fuzz bench clean

up: deps toolchain build-release
	./target/release/popcast up

test: deps-test deps-browser deps-web deps-h3client deps-ical deps-whip toolchain lint web-check browser-selftest unit-tests

deps:
	@scripts/install-system-deps.sh build

deps-test:
	@scripts/install-system-deps.sh test

deps-bench:
	@scripts/install-system-deps.sh bench

# The browser harness's npm packages (hls.js, playwright-core; no browser download: it drives
# Debian's chromium from deps-test). npm ci only when node_modules is missing or older than
# the lockfile; the touch marks it current even when npm ci left its mtime alone.
deps-browser:
	@command -v npm >/dev/null && node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' \
		|| { echo "deps-browser: needs Node.js >= 20 with npm" >&2; exit 1; }
	@cd tests/browser && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then \
		echo "browser harness: npm ci in tests/browser"; \
		npm ci --no-audit --no-fund && touch node_modules; \
	else \
		echo "browser harness: node_modules up to date"; \
	fi

# The web player's build and test tools (esbuild, TypeScript, hls.js), as deps-browser.
deps-web:
	@command -v npm >/dev/null || { echo "deps-web: needs Node.js >= 20 with npm" >&2; exit 1; }
	@cd player-sdk/web && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then \
		echo "web player: npm ci in player-sdk/web"; \
		npm ci --no-audit --no-fund && touch node_modules; \
	else \
		echo "web player: node_modules up to date"; \
	fi

# The web player: type-check, unit tests (node's test runner), and a check that the
# committed bundle (player-sdk/web/dist/player.js, which cargo embeds) is what src/ builds to.
web-check: deps-web
	cd player-sdk/web && npm run -s check

# Rebuilds player-sdk/web/dist/player.js after a change to player-sdk/web/src (commit it).
player: deps-web
	cd player-sdk/web && npm run -s build

# The HTTP/3 client the edge's tests drive: curl_cffi's `curl-cffi` CLI, from PyPI (its wheel
# carries a libcurl with HTTP/3; Debian 12's curl has none). Pinned; pip only when that
# version is missing.
CURL_CFFI_VERSION := 0.16.3
deps-h3client:
	@command -v python3 >/dev/null || { echo "deps-h3client: needs python3 with pip" >&2; exit 1; }
	@if [ "$$(python3 -c 'import importlib.metadata as m; print(m.version("curl_cffi"))' 2>/dev/null)" = "$(CURL_CFFI_VERSION)" ]; then \
		echo "h3 client: curl_cffi $(CURL_CFFI_VERSION) present"; \
	else \
		echo "h3 client: pip install curl_cffi==$(CURL_CFFI_VERSION)"; \
		python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "curl_cffi==$(CURL_CFFI_VERSION)"; \
	fi
	@command -v curl-cffi >/dev/null || { echo "deps-h3client: curl-cffi is not on PATH after the install" >&2; exit 1; }

# A real iCalendar parser for the calendar feed's test: Python's icalendar from PyPI, pinned.
ICALENDAR_VERSION := 6.1.0
deps-ical:
	@command -v python3 >/dev/null || { echo "deps-ical: needs python3 with pip" >&2; exit 1; }
	@if [ "$$(python3 -c 'import importlib.metadata as m; print(m.version("icalendar"))' 2>/dev/null)" = "$(ICALENDAR_VERSION)" ]; then \
		echo "ical parser: icalendar $(ICALENDAR_VERSION) present"; \
	else \
		echo "ical parser: pip install icalendar==$(ICALENDAR_VERSION)"; \
		python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "icalendar==$(ICALENDAR_VERSION)"; \
	fi

# The second, independent WHIP publisher the WHIP tests drive: aiortc (a Python WebRTC stack)
# from PyPI, pinned; its wheels bring their own FFmpeg (PyAV) for H.264 and Opus.
AIORTC_VERSION := 1.16.0
deps-whip:
	@command -v python3 >/dev/null || { echo "deps-whip: needs python3 with pip" >&2; exit 1; }
	@if [ "$$(python3 -c 'import importlib.metadata as m; print(m.version("aiortc"))' 2>/dev/null)" = "$(AIORTC_VERSION)" ]; then \
		echo "whip client: aiortc $(AIORTC_VERSION) present"; \
	else \
		echo "whip client: pip install aiortc==$(AIORTC_VERSION)"; \
		python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "aiortc==$(AIORTC_VERSION)"; \
	fi

# The browser harness against an ffmpeg-made stream, no Popcast involved (~15 s). Before
# unit-tests so that `make test` still ends on the whole suite's summary.
browser-selftest: deps-test deps-browser
	tests/browser/selftest.sh

# rustfmt and clippy come with rustup's default profile; add them if this toolchain lacks them.
toolchain:
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy

build-release:
	$(CARGO) build --release --locked --bin popcast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# nextest when present (it prints one summary line); cargo test otherwise. Doc tests first,
# so the run ends on the whole suite's summary.
unit-tests:
	$(CARGO) test --workspace --doc --locked -q
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		$(CARGO) test --workspace --locked --no-fail-fast; \
	fi

# Coverage-guided fuzzing of every parser of peer bytes (needs cargo-fuzz; uses the stable
# toolchain with RUSTC_BOOTSTRAP because no nightly can be fetched here).
fuzz: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for t in $$(cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz list); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
		(cd fuzz && mkdir -p corpus-work/$$t && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t corpus-work/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) $$([ -f dict/$$t.dict ] && echo -dict=dict/$$t.dict)) || exit 1; \
	done

# Benchmarks built so far (muxing throughput vs ffmpeg; frame arrival to chunk receipt at
# the origin with ffmpeg publishing over RTMP; the edge's delay, fan-out and throughput vs
# nginx; hls.js latency per part target; the `popcast bench` latency, startup and fan-out
# scenarios with player-sdk clients); figures land in bench/results/ and bench/RESULTS.md.
bench: deps-bench deps-browser deps-whip
	@mkdir -p bench/results
	$(CARGO) bench -p popcast-bench --bench mux
	$(CARGO) bench -p popcast-bench --bench origin_latency
	$(CARGO) bench -p popcast-bench --bench origin_latency -- whip
	$(CARGO) bench -p popcast-bench --bench edge
	$(CARGO) test -p popcast-packager --release --test hlsjs -- --ignored --nocapture part_target_sweep
	$(CARGO) run --release -q -- bench all --short
	$(CARGO) run --release -q -- bench results

clean:
	$(CARGO) clean
