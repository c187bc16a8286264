# The README's commands. Everything installs into .venv inside the repository.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/og-marl-inspo
STAMP := $(VENV)/.installed
SEEDS ?= 5

.PHONY: install install-gpu quickstart test benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# GPU machines: the full TensorFlow wheel with CUDA replaces tensorflow-cpu.
install-gpu: $(STAMP)
	$(PY) -m pip uninstall --quiet --yes tensorflow-cpu
	$(PY) -m pip install --quiet -e ".[test,gpu]"

quickstart: $(STAMP)
	$(CLI) datasets build --source inspo --env matrix --scenario xor
	$(CLI) datasets build --source inspo --env matrix --scenario m_ne
	$(CLI) reproduce inspo-table1 --systems bc,inspo --seeds $(SEEDS) --workers 2 --no-progress

test: $(STAMP)
	$(PY) -m pytest

benchmark: $(STAMP)
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf vaults results
