# Two entry points, each self-contained on a fresh machine (Python 3.11, no GPU):
#   make demo   set up .venv, then run the main job on the embedded default
#   make test   set up .venv, then run the test suite
#   make test-arm  parity on LCE's aarch64 kernels under qemu (CI runs it after make test)
#   make wheel-arm  the larq-dybnn-runtime wheel for aarch64 Linux into dist/
#   make docs   build the documentation site into site/ (strict); make docs-serve serves it
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Three test workers on two cores: much of a test is single-threaded Python (tracing,
# conversion, process start), and a third worker fills the gaps (608 s -> 544 s for
# the suite on 2 idle cores, measured back to back).
PYTEST_WORKERS ?= 3
# The emulated aarch64 tests are CPU-bound throughout: one worker per core.
ARM_WORKERS ?= 2

.PHONY: setup demo test test-arm wheel-arm lce-sources docs docs-serve clean

$(STAMP): setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/larq-dybnn demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=25

# The documentation site (mkdocs-material, API reference from the docstrings).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# LCE's kernel sources, fetched from their pinned upstream commits and checked against
# the committed manifest (application/device/lce-sources.json). Set LCE_SOURCE to an
# existing folder (CI: the shared copy) or LCE_MIRROR to an offline mirror.
LCE_SOURCE ?= .lce-sources
LCE_MIRROR ?=
lce-sources: $(STAMP)
	$(BIN)/larq-dybnn lce-sources $(LCE_SOURCE) $(if $(LCE_MIRROR),--mirror $(LCE_MIRROR))

# The larq-dybnn-runtime wheel for aarch64 Linux (Raspberry Pi OS 64-bit) into dist/.
wheel-arm: $(STAMP)
	@if [ "$(LCE_SOURCE)" = .lce-sources ]; then $(MAKE) --no-print-directory lce-sources; fi
	$(BIN)/python -m larq_dybnn.device.wheel --lce-source $(LCE_SOURCE) --output-dir dist

# Parity on LCE's aarch64 kernels under qemu (Debian; root for apt-get on first use),
# and the runtime wheel installed with pip into the emulated Python as a Pi user would.
# The emulated environment is cached in $(ARM_DIR).
ARM_DIR ?= .arm
test-arm: $(STAMP)
	@if [ "$(LCE_SOURCE)" = .lce-sources ]; then $(MAKE) --no-print-directory lce-sources; fi
	LARQ_DYBNN_ARM_DIR=$(ARM_DIR) LARQ_DYBNN_LCE_SOURCE=$(abspath $(LCE_SOURCE)) \
		$(BIN)/python -m pytest tests_arm -n $(ARM_WORKERS) --durations=10

clean:
	rm -rf $(VENV) outputs build site dist *.egg-info $(ARM_DIR) .lce-sources
