"""The numbered notebooks: committed clean, papermill-ready, and they all run at the smoke preset."""
import ast
import json

import nbformat
import pytest

from maskgan.pipeline import NOTEBOOK_DIR, discover_notebooks, run_pipeline

ALL_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NUMBERED = discover_notebooks()
EXPECTED = ["00_data", "01_maskvae_pretraining", "02_dmn_stage1", "03_ebst", "04_sft_inspection",
            "05_latent_interpolation", "06_evaluation"]


def test_the_seven_numbered_notebooks_exist_in_order():
    assert [p.stem for p in NUMBERED] == EXPECTED


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_nbformat_and_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs or execution counts"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_parameters_cell_is_tagged_and_holds_literals_only(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    names = []
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.unparse(stmt)
        ast.literal_eval(stmt.value)  # raises on anything but a literal
        names.append(stmt.targets[0].id)
    assert {"preset", "run_dir", "data", "data_root", "device", "seed", "overrides"} <= set(names)


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_notebook_teaches_with_prose_and_paper_references(path):
    nb = nbformat.read(path, as_version=4)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert any(ref in prose for ref in ("Eq.", "Sec.", "Algorithm", "Fig.")), f"{path.name} cites no part of the paper"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_notebook_code_stays_thin(path):
    """Logic lives in the package: notebook functions, if any, are a few lines long."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.end_lineno - node.lineno < 8, f"{path.name}: {node.name} belongs in the package"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("smoke_run")
    results = run_pipeline("smoke", run_dir, log=lambda line: None)
    return run_dir, results


def test_every_notebook_runs_at_the_smoke_preset(smoke_run):
    run_dir, results = smoke_run
    assert [r.name for r in results] == EXPECTED and all(r.status == "ok" for r in results)
    executed = nbformat.read(run_dir / "notebooks" / "00_data.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")


def test_each_notebook_saves_its_figures(smoke_run):
    run_dir, _ = smoke_run
    figures = {p.name[:2] for p in (run_dir / "figures").iterdir()}
    assert {"00", "01", "02", "03", "04", "05", "06"} <= figures


def test_the_notebooks_record_metrics_and_train_every_stage(smoke_run):
    run_dir, _ = smoke_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"data", "maskvae", "eval"} <= set(metrics)
    for stage in ("vae", "dmn", "ebst"):
        assert (run_dir / stage / "checkpoints" / "latest.json").exists()


def test_a_later_notebook_names_the_missing_earlier_one(tmp_path):
    from maskgan.pipeline import PipelineError
    with pytest.raises(PipelineError, match="01_maskvae_pretraining"):
        run_pipeline("smoke", tmp_path, only=["03"], log=lambda line: None)
