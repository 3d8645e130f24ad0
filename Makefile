# Two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test e2e-deps goldens bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demo

test: $(STAMP) e2e-deps
	$(PY) -m pytest -q

# Chromium, etcd and a kube-apiserver for the end-to-end tests, which never install anything.
e2e-deps:
	@bash tests/e2e_deps.sh

# Rewrite tests/golden/*.json from the current output; review the diff before committing.
# Tests never write a golden file on their own: a missing one fails.
goldens: $(STAMP)
	$(PY) -m pytest -q -m golden --update-golden

bench: $(STAMP)
	$(PY) -m pip install -qq -e '.[dev,bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) out
