# flashroom: `make demo` and `make test` do all set-up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint typecheck toolchain buildtools clean

# DTLSSocket (pinned in pyproject.toml) builds tinydtls from source with autoreconf: Debian's
# autoconf, automake and libtool, installed before pip when root and missing.
BUILD_PACKAGES := autoconf automake libtool
buildtools:
	@missing=""; for p in $(BUILD_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "buildtools: installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "buildtools: could not install$$missing; pip cannot build DTLSSocket"; \
	  else echo "buildtools: not root or no apt-get; missing$$missing: pip cannot build DTLSSocket"; fi; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory buildtools
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests need (best effort: needs root and apt-get; the tests that need them
# skip with the package name otherwise):
#   binutils-arm-none-eabi gcc-arm-none-eabi libnewlib-arm-none-eabi: the linker test and the
#     Device OS build (spec 10); libarchive-zip-perl xxd: the crc32/xxd tools its makefiles run;
#   dfu-util: dfu-suffix checks the DfuSe files flashroom writes.
DEB_PACKAGES := binutils-arm-none-eabi gcc-arm-none-eabi libnewlib-arm-none-eabi \
	libarchive-zip-perl xxd dfu-util
toolchain:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "toolchain: installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "toolchain: could not install$$missing; the tests that need them will skip"; \
	  else echo "toolchain: not root or no apt-get; missing$$missing: the tests that need them will skip"; fi; \
	fi

demo: $(STAMP) toolchain
	$(VENV)/bin/flashroom demo --out out

test: $(STAMP) toolchain
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
