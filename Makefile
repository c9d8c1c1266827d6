# airlog: `make run` starts the service, `make test` checks everything.

CARGO ?= cargo
CONFIG ?= deploy/airlog.example.toml

# Debian packages the build and the tests need, and a file each one provides.
# python3-requests runs the reference Python clients against airlog; liquidsoap and sox
# (test audio) run the playout monitor's tests against a real Liquidsoap; nginx serves HLS
# for the log shipper's tests; mpv runs the mpv client's tests; chromium and its WebDriver
# run the operator console's browser tests and `make screenshots`.
APT_PACKAGES := postgresql:/usr/lib/postgresql libpq-dev:/usr/include/postgresql/libpq-fe.h \
	python3-requests:/usr/lib/python3/dist-packages/requests \
	liquidsoap:/usr/bin/liquidsoap sox:/usr/bin/sox nginx:/usr/sbin/nginx mpv:/usr/bin/mpv \
	chromium:/usr/bin/chromium chromium-driver:/usr/bin/chromedriver

.PHONY: run build test deps fmt bench screenshots

## run: build in release mode and serve with the example settings (data in ./var)
run: build
	./target/release/airlog --config $(CONFIG) serve

build:
	$(CARGO) build --release --locked

## test: install what the tests need, then formatting, lints and every test
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) test --locked

## bench: the benchmarks (minutes; they print ratios, see README "Benchmarks")
bench:
	$(CARGO) bench --bench stream_events -- --events 1000000
	$(CARGO) bench --bench player_jobs -- --events 1000000 --devices 10000 --history-factor 10
	$(CARGO) bench --bench audience -- --sessions 10000000 --listeners 300000
	$(CARGO) bench --bench item_audience -- --entries 10000 --sessions 1000000

## screenshots: every console page at desktop (1366x900) and phone (390x844) width, in a real
## headless Chromium, into ./screenshots/ (not committed)
screenshots: deps
	$(CARGO) test --locked --test it console::screenshots -- --ignored --exact --nocapture

## deps: install missing Debian packages (as root with apt-get), or say what is missing.
## policy-rc.d keeps the packages' services (nginx) from being started by the install.
deps:
	@missing=""; \
	for entry in $(APT_PACKAGES); do \
	  pkg=$${entry%%:*}; path=$${entry#*:}; \
	  [ -e "$$path" ] || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; \
	  guard=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; rc=$$?; \
	  [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; \
	  exit $$rc; \
	else \
	  echo "missing packages:$$missing; install them with: sudo apt-get install$$missing" >&2; exit 1; \
	fi
	@# mpv-history-daemon (PyPI) parses history files the same way as `airlog mpv parse` is checked against.
	@python3 -c 'import mpv_history_daemon' 2>/dev/null || \
	  python3 -m pip install --quiet --disable-pip-version-check mpv-history-daemon || \
	  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages mpv-history-daemon
	@# schemathesis (PyPI) checks every answer of a running airlog against its OpenAPI document.
	@command -v schemathesis >/dev/null 2>&1 || \
	  python3 -m pip install --quiet --disable-pip-version-check schemathesis || \
	  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages schemathesis

fmt:
	$(CARGO) fmt --all
