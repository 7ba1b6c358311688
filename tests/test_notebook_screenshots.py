"""The pieces of scripts/notebook_screenshots.py that run without a browser: the notebook it executes
is notebook 04 as a user opens it (one parameters cell, edited in place, a relative run directory,
no papermill-injected cell), and each screenshot's anchor is still in the notebook. The script
itself (JupyterLab in Chromium, minutes of EBST training) is a developer's step, not a test."""
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

from maskgan.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shots():
    spec = importlib.util.spec_from_file_location("notebook_screenshots", ROOT / "scripts" / "notebook_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_the_prepared_notebook_has_one_parameters_cell_with_the_preset_and_a_relative_run_dir(shots):
    nb = shots.prepare_notebook(shots.NOTEBOOK, preset="cpu", run_dir="../runs/lab")
    cells = shots.parameters_cells(nb)
    assert len(cells) == 1 and cells[0].metadata["tags"] == ["parameters"]
    namespace = {}
    exec(cells[0].source, namespace)  # literals only, as every parameters cell
    assert namespace["preset"] == "cpu" and namespace["run_dir"] == "../runs/lab"
    assert "# checkpoints, logs" in cells[0].source  # the line's comment is kept


def test_the_prepared_notebook_has_no_outputs(shots):
    nb = shots.prepare_notebook(shots.NOTEBOOK)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_a_papermill_injected_parameters_cell_is_dropped(shots, tmp_path):
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    injected = parameterize_notebook(load_notebook_node(str(shots.NOTEBOOK)), {"run_dir": "/machine/runs/nb16"})
    assert len(shots.parameters_cells(injected)) == 2
    path = tmp_path / "04_ebst.ipynb"
    nbformat.write(injected, path)
    nb = shots.prepare_notebook(path)
    assert len(shots.parameters_cells(nb)) == 1 and "/machine" not in "".join(c.source for c in nb.cells)


def test_an_absolute_run_dir_is_refused(shots):
    with pytest.raises(ConfigError, match="absolute"):
        shots.prepare_notebook(shots.NOTEBOOK, run_dir=str(ROOT / "runs" / "lab"))


def test_every_screenshot_anchor_is_in_notebook_04(shots):
    nb = shots.prepare_notebook(shots.NOTEBOOK)
    tops = [shots.anchor_index(nb, s) for s in shots.SHOTS]
    assert tops[0] == 0 and tops == sorted(tops) and len(set(tops)) == len(tops)


def test_a_missing_anchor_names_the_screenshot(shots):
    nb = shots.prepare_notebook(shots.NOTEBOOK)
    with pytest.raises(ConfigError, match="gone.png"):
        shots.anchor_index(nb, shots.Shot("gone.png", "no_such_call()"))
