# Two entry points, each self-contained on a fresh machine (Python 3.11, no GPU):
#   make demo   set up .venv, then run the main job on the embedded default
#   make test   set up .venv, then run the test suite
#   make test-arm  parity on LCE's aarch64 kernels under qemu (CI runs it after make test)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: setup demo test test-arm clean

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

# Parity on LCE's aarch64 kernels under qemu (Debian; root for apt-get on first use).
# The emulated environment is cached in $(ARM_DIR).
ARM_DIR ?= .arm
test-arm: $(STAMP)
	LARQ_DYBNN_ARM_DIR=$(ARM_DIR) $(BIN)/python -m pytest tests_arm -n $(PYTEST_WORKERS) --durations=10

clean:
	rm -rf $(VENV) outputs build *.egg-info $(ARM_DIR)
