# The two commands of this project: `make test` and `make demo`.
# Each creates .venv on first use (reused afterwards) and installs the project into it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench gpu-wheels clean

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

# The wheels tools/gpu_check.sh installs on a GPU image that has torch, torchaudio and timm
# but not SpeechBrain (Python 3.12, x86-64); README "On a GPU"
GPU_WHEELS := speechbrain==1.1.2 hyperpyyaml==1.2.3 ruamel.yaml==0.18.17 ruamel.yaml.clib==0.2.15 \
	soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
gpu-wheels: $(STAMP)
	$(PY) -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

clean:
	rm -rf $(VENV) *.egg-info
