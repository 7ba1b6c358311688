# The kit's commands. `make demo` and `make test` each create .venv and install the kit into it
# the first time (and again only when pyproject.toml changes), then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN_DIR ?= runs/demo
FACES ?=
PRECISION ?=
APP_PORT ?= 8866

.PHONY: demo test lab app bench figures clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name maskgan --display-name "Python (maskgan kit)" >/dev/null
	@touch $(STAMP)

## demo: the CPU demo pipeline on SynthFaces (notebooks executed by papermill into $(RUN_DIR))
demo: $(STAMP)
	$(PY) -m maskgan demo --run-dir $(RUN_DIR)

## figures: copy the figures of $(RUN_DIR) into figures/ for the README (a developer's step; changes the checkout)
figures: $(STAMP)
	$(PY) -m maskgan publish-figures --run-dir $(RUN_DIR)

## test: the test suite (includes executing every notebook at the smoke preset)
test: $(STAMP)
	$(PY) -m pytest -q

## lab: JupyterLab on notebooks/ with the kit's kernel (as root, the usual case in a container,
## Jupyter refuses to start without --allow-root: it is added then, and only then)
LAB_AS_ROOT = $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(LAB_AS_ROOT)

## app: the interactive editing page (notebooks/app.ipynb) served by Voila at http://127.0.0.1:8866, with
## the checkpoints of $(RUN_DIR) (and the faces of the folder $(FACES) when given); says what to train first
## when the run has none. The kernel of a closed page is stopped after 10 idle minutes (each holds ~300 MB).
## PRECISION=fp32|bf16|auto: what frames render in (default auto, docs/speed.md)
app: $(STAMP)
	@$(PY) -m maskgan.widgets check $(RUN_DIR) $(if $(FACES),--faces "$(FACES)")
	MASKGAN_RUN_DIR="$(abspath $(RUN_DIR))" MASKGAN_FACES="$(if $(FACES),$(abspath $(FACES)))" \
		MASKGAN_PRECISION="$(PRECISION)" \
		$(VENV)/bin/voila notebooks/app.ipynb --no-browser \
		--Voila.ip=127.0.0.1 --Voila.port=$(APP_PORT) \
		--MappingKernelManager.cull_idle_timeout=600 --MappingKernelManager.cull_interval=60

## bench: speed benchmarks on this machine (PRECISION=fp32 for fp32 rows only; default auto: fp32 and bf16)
bench: $(STAMP)
	$(PY) -m maskgan bench $(if $(PRECISION),--precision $(PRECISION))

clean-venv:
	rm -rf $(VENV)
