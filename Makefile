# Two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint goldens bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demo

test: $(STAMP) lint
	$(PY) -m pytest -q

# Lint and types (config in pyproject.toml); a few seconds, so every `make test` runs them first.
lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m mypy

# Rewrite tests/golden/*.json from the current output; review the diff before committing.
# Tests never write a golden file on their own: a missing one fails.
goldens: $(STAMP)
	$(PY) -m pytest -q -m golden --update-golden

bench: $(STAMP)
	$(PY) -m pip install -qq -e '.[dev,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) out
