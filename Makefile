# The two commands of this project: `make test` and `make demo`.
# Each creates .venv on first use (reused afterwards) and installs the project into it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider

demo: $(STAMP)
	$(PY) tools/demo.py

bench: $(STAMP)
	$(PY) -m fastast_plugin.evaluation.bench

clean:
	rm -rf $(VENV) *.egg-info
