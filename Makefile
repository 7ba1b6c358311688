# The kit's commands. `make demo` and `make test` each create .venv and install the kit into it
# the first time (and again only when pyproject.toml changes), then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN_DIR ?= runs/demo

.PHONY: demo test lab bench clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name maskgan --display-name "Python (maskgan kit)" >/dev/null
	@touch $(STAMP)

## demo: the CPU demo pipeline on SynthFaces (notebooks executed by papermill into $(RUN_DIR))
demo: $(STAMP)
	$(PY) -m maskgan demo --run-dir $(RUN_DIR)

## test: the test suite (includes executing every notebook at the smoke preset)
test: $(STAMP)
	$(PY) -m pytest -q

## lab: JupyterLab on notebooks/ with the kit's kernel
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

## bench: speed benchmarks on this machine
bench: $(STAMP)
	$(PY) -m maskgan bench

clean-venv:
	rm -rf $(VENV)
