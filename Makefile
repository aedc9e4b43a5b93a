# flashroom: `make demo` and `make test` do all set-up from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint typecheck toolchain clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's binutils-arm-none-eabi for the linker test; best effort (needs root and apt).
toolchain:
	@if ! command -v arm-none-eabi-ld >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils-arm-none-eabi >/dev/null) \
	      || echo "toolchain: could not install binutils-arm-none-eabi; the linker test will skip"; \
	  else echo "toolchain: not root or no apt-get; the linker test will skip"; fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/flashroom demo --out out

test: $(STAMP) toolchain
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
