"""The numbered notebooks: committed clean, papermill-ready, and they all run at the smoke preset."""
import ast
import json

import nbformat
import pytest

from maskgan.pipeline import NOTEBOOK_DIR, discover_notebooks, run_pipeline

ALL_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NUMBERED = discover_notebooks()
EXPECTED = ["00_data", "01_maskvae_pretraining", "02_latent_interpolation", "03_dmn_stage1", "04_ebst",
            "05_sft_adain", "06_evaluation"]
ROOT = NOTEBOOK_DIR.parent

#: The LaTeX each numbered notebook's markdown must hold: the equations it implements.
EQUATIONS = {
    "00_data": [r"\mathrm{onehot}(M)_{c,h,w}", r"\mathrm{flip}(M)_{h,w}"],
    "01_maskvae_pretraining": [
        r"\mathcal{L}_{VAE} = \mathcal{L}_{CE} + \lambda_{KL}\,\mathcal{L}_{KL}",  # Eq. 3
        r"\sigma = \exp\left(\tfrac{1}{2}\log\sigma^2\right)",  # the log-variance form
        r"-\frac{1}{2}\sum_{j=1}^{d}\left(1 + \log\sigma^2_{n,j} - \mu_{n,j}^2 - \exp(\log\sigma^2_{n,j})\right)",  # KL
        r"\frac{1}{N}\sum_{n=1}^{N}",  # averaged over the batch
        r"w_{M_{n,h,w}}",  # the cpu preset's class-weighted CE
    ],
    "02_latent_interpolation": [r"z(t) = z_a + t\,(z_b - z_a)", r"z^{inter} = z^t + \frac{1}{\lambda_{inter}}",
                                r"z^{outer} = z^t - \frac{1}{\lambda_{inter}}", r"M^{pix}(t)_{h,w}"],
    "03_dmn_stage1": [
        r"\gamma(A) \odot F + \beta(A)",  # Eq. 1
        r"\mathrm{AdaIN}(z, x, y) = x\,\frac{z - \mu(z)}{\sigma(z)} + y",  # Eq. 2
        r"\mathcal{L}_G = \mathcal{L}_{adv} + \lambda_{feat}\,\mathcal{L}_{feat} + \lambda_{percept}\,\mathcal{L}_{percept}",  # Eq. 6
        r"\big(D_k(M^t, I^{out}) - 1\big)^2",  # Eq. 7, LSGAN
        r"\frac{4}{(n_{layers}+1)\,K}",  # Eq. 8
        r"\left(\tfrac{1}{32}, \tfrac{1}{16}, \tfrac{1}{8}, \tfrac{1}{4}, 1\right)",  # Eq. 9
        r"\mathcal{L}_G^{cpu}",  # the cpu preset's deviation
    ],
    "04_ebst": [
        "1. **Encode**", "2. **Simulate two edits**", "3. **Stage I**", "4. **Stage II**", "5. **Alternate**",
        r"z^t = \mathrm{Enc}_{VAE}(M^t)", r"z^{inter} = z^t + \frac{1}{\lambda_{inter}}\left(z^{ref} - z^t\right)",
        r"\alpha = B(I^{inter}, I^{outer})", r"I^{blend} = \alpha \odot I^{inter} + (1 - \alpha) \odot I^{outer}",
    ],
    "05_sft_adain": [r"\mathrm{SFT}(F \mid A)_{c,h,w}", r"\mathrm{AdaIN}(z, x, y)_{c}"],
    "06_evaluation": [r"\mathrm{mIoU} = ", r"10 \log_{10}", r"\mathrm{SWD}(X, Y)"],
}


def markdown_of(path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")


def resolve(dotted: str):
    """The object a dotted name like ``maskgan.losses.maskvae_loss`` names (ImportError / AttributeError if none)."""
    import importlib
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:n]))
        except ModuleNotFoundError:
            continue
        for attr in parts[n:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_the_seven_numbered_notebooks_exist_in_order():
    assert [p.stem for p in NUMBERED] == EXPECTED


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_valid_nbformat_and_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert dirty == [], f"{path.name}: cells {dirty} have outputs or execution counts"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_declares_the_kits_kernel(path):
    """JupyterLab and Voila start the kernel a notebook names: the kit's, which `make` registers with
    the venv's Python (where the kit is installed); "python3" may be another interpreter."""
    from maskgan.pipeline import KERNEL_NAME
    assert nbformat.read(path, as_version=4).metadata.kernelspec.name == KERNEL_NAME
    assert f"ipykernel install --sys-prefix --name {KERNEL_NAME} " in (ROOT / "Makefile").read_text()


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


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_notebook_writes_the_equations_it_implements(path):
    prose = markdown_of(path)
    assert "$$" in prose, f"{path.name} has no displayed equation"
    missing = [eq for eq in EQUATIONS[path.stem] if eq not in prose]
    assert missing == [], f"{path.name} lacks {missing}"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_functions_named_next_to_the_equations_exist(path):
    import re
    names = sorted(set(re.findall(r"`(maskgan(?:\.[A-Za-z_]\w*)+)`", markdown_of(path))))
    assert names, f"{path.name} names no function of the kit"
    for name in names:
        resolve(name)  # raises when the name does not exist


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_notebook_ends_with_what_to_try_next(path):
    last = nbformat.read(path, as_version=4).cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## What to try next")
    assert "xpect" in last.source, f"{path.name}: say what the student should expect"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_figures_are_named_by_the_notebook_number(path):
    import re
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    names = re.findall(r'figure_path\("([^"]+)"\)', code) + re.findall(r'"(\d\d_[a-z0-9_]+\.gif)"', code)
    assert names or path.stem == "06_evaluation"  # 06's figures are saved by maskgan.evaluation.eval_figures
    assert all(n.startswith(path.stem[:2] + "_") for n in names), names


def test_readme_images_and_figure_names_exist():
    import re
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme)
    assert links and [p for p in links if not (ROOT / p).exists()] == []
    named = re.findall(r"`(\d\d_[a-z0-9_]+\.(?:png|gif))`", readme)
    assert [n for n in named if not (ROOT / "figures" / n).exists()] == []


def test_the_committed_diagrams_and_notebook_screenshot_exist():
    for name in ("03_dmn_diagram.png", "04_ebst_diagram.png", "04_ebst_notebook.png"):
        assert (ROOT / "figures" / name).stat().st_size > 10_000, name


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


def test_notebooks_that_train_still_show_their_figures(smoke_run):
    """Every cell that draws a figure (saves one, or displays a sample grid) shows it, also after a
    training cell: training used to switch matplotlib to Agg, and the figures after it vanished."""
    import re
    run_dir, _ = smoke_run
    missing, after_training = [], set()
    for nb in EXPECTED:
        trained = False
        for i, cell in enumerate(nbformat.read(run_dir / "notebooks" / f"{nb}.ipynb", as_version=4).cells):
            if cell.cell_type != "code":
                continue
            trained = trained or "train(" in cell.source
            saved = [n for n in re.findall(r'figure_path\("([^"]+)"\)', cell.source)
                     if (run_dir / "figures" / f"{n}.png").exists()]  # a branch for other data saves nothing
            if saved or "display(Image(" in cell.source:
                if not any({"image/png", "image/gif"} & set(out.get("data", {})) for out in cell.outputs):
                    missing.append(f"{nb} cell {i}")
                if trained:
                    after_training.add(nb)
    assert missing == []
    assert {"01_maskvae_pretraining", "03_dmn_stage1", "04_ebst"} <= after_training  # the case that broke


def test_at_the_smoke_preset_each_notebook_says_it_only_checks_the_code_and_warns_nothing_else(smoke_run):
    from maskgan.notebook import SMOKE_NOTE
    run_dir, _ = smoke_run
    for nb in EXPECTED:
        outputs = [o for c in nbformat.read(run_dir / "notebooks" / f"{nb}.ipynb", as_version=4).cells
                   if c.cell_type == "code" for o in c.get("outputs", [])]
        assert SMOKE_NOTE in "".join(o.get("text", "") for o in outputs), nb
        stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
        assert "RANDOM weights" not in stderr and "Warning" not in stderr, (nb, stderr[:500])


def test_a_cell_that_trains_for_minutes_says_so_before_it_starts():
    for path in NUMBERED:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if cell.cell_type == "code" and ("train(" in cell.source or "evaluate_run(" in cell.source):
                before = cells[i - 1]
                said = "for minutes" in before.source or "for a minute or more" in before.source
                assert before.cell_type == "markdown" and said, f"{path.name} cell {i}"


def test_a_later_notebook_names_the_missing_earlier_one_with_the_commands_at_the_run_preset(tmp_path):
    """Notebook 04 at smoke in a fresh run: the hint trains the MaskVAE at smoke too (a cpu-preset
    MaskVAE would not load into a smoke run)."""
    from maskgan.pipeline import PipelineError
    with pytest.raises(PipelineError) as failed:
        run_pipeline("smoke", tmp_path, only=["04"], log=lambda line: None)
    message, run_dir = str(failed.value), tmp_path.resolve()  # the pipeline resolves its run folder
    assert "01_maskvae_pretraining" in message
    assert f"`python -m maskgan train vae --run-dir {run_dir} --preset smoke`" in message
    assert f"`python -m maskgan pipeline --only 01 --run-dir {run_dir} --preset smoke`" in message


def test_the_pipeline_draws_the_diagrams(smoke_run):
    run_dir, _ = smoke_run
    for name in ("03_dmn_diagram.png", "04_ebst_diagram.png"):
        assert (run_dir / "figures" / name).stat().st_size > 10_000, name


def _outputs_text(executed) -> str:
    return "\n".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_the_live_steps_ran_in_the_executed_notebooks(smoke_run):
    run_dir, _ = smoke_run
    text = {nb: _outputs_text(nbformat.read(run_dir / "notebooks" / f"{nb}.ipynb", as_version=4))
            for nb in ("01_maskvae_pretraining", "03_dmn_stage1", "04_ebst")}
    assert "KL recomputed from mu and logvar" in text["01_maskvae_pretraining"]
    assert "g/feat" in text["03_dmn_stage1"] and "def gan_update" in text["03_dmn_stage1"]
    for needle in ("z^inter", "z^outer", "s1/g/total", "s2/g/total", "GB (dmn, blender)", "def stage_two"):
        assert needle in text["04_ebst"], needle
    for figure in ("01_maskvae_step", "03_stage1_step", "04_ebst_iteration"):
        assert (run_dir / "figures" / f"{figure}.png").exists(), figure


def _tree(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_the_live_ebst_iteration_records_every_named_tensor_and_writes_nothing(smoke_run):
    import torch

    from maskgan.config import Config
    from maskgan.inspect_training import ebst_iteration
    from maskgan.run import Run
    run_dir, _ = smoke_run
    cfg = Config.preset("smoke")
    before = _tree(run_dir)
    it = ebst_iteration(cfg, Run(run_dir))
    assert _tree(run_dir) == before  # no checkpoint, log or sample written
    n, s, d = cfg.train.batch_size, cfg.data.size, cfg.model.maskvae.latent_dim
    expected = {"M^t": (n, s, s), "M^ref": (n, s, s), "I^t": (n, 3, s, s), "z^t": (n, d), "z^ref": (n, d),
                "z^inter": (n, d), "z^outer": (n, d), "M^inter": (n, s, s), "M^outer": (n, s, s),
                "I^out": (n, 3, s, s), "I^inter": (n, 3, s, s), "I^outer": (n, 3, s, s), "alpha": (n, 3, s, s),
                "I^blend": (n, 3, s, s)}
    assert it.shapes() == expected
    t = 1 / cfg.train.lambda_inter
    # The same formulas in float32, written another way (t rounded to float32, a division against a
    # product): a few ulps of the codes' size, whatever the instruction set.
    ulps = 8 * torch.finfo(torch.float32).eps * float(it.z_t.abs().max() + it.z_ref.abs().max())
    assert (it.z_inter - (it.z_t + t * (it.z_ref - it.z_t))).abs().max() <= ulps
    assert (it.z_outer - (it.z_t - t * (it.z_ref - it.z_t))).abs().max() <= ulps
    assert ((it.alpha > 0) & (it.alpha < 1)).all()
    # images in [-1, 1]: a few ulps of 1
    assert (it.i_blend - (it.alpha * it.i_inter + (1 - it.alpha) * it.i_outer)).abs().max() <= 8 * torch.finfo(torch.float32).eps
    assert {"s1/g/total", "s1/d/total"} <= set(it.stage_one) and {"s2/g/total", "s2/d/total"} <= set(it.stage_two)
    assert it.updates["stage I"]["dmn"] > 0 and it.updates["stage I"]["blender"] == 0
    assert it.updates["stage II"]["dmn"] > 0 and it.updates["stage I"]["disc"] > 0
    assert it.updates["stage I"]["maskvae"] == 0 and it.updates["stage II"]["maskvae"] == 0
    assert it.start.startswith("stage I, step")


def test_the_live_maskvae_and_stage_one_steps_record_their_tensors(smoke_run):
    from maskgan.config import Config
    from maskgan.inspect_training import maskvae_step, stage_one_step
    from maskgan.run import Run
    run_dir, _ = smoke_run
    cfg = Config.preset("smoke")
    n, s, d = cfg.train.vae_batch_size, cfg.data.size, cfg.model.maskvae.latent_dim
    vae = maskvae_step(cfg, Run(run_dir))
    assert vae.shapes() == {"M^t": (n, s, s), "mu": (n, d), "logvar": (n, d), "z": (n, d), "logits": (n, 19, s, s),
                            "M^decoded": (n, s, s)}
    # the KL by hand and the loss's, both float32 sums of the same terms in other orders: rel 1e-4 is
    # far above log2(latent) * 2^-24 relative, the bound for such a sum on any instruction set
    assert abs(vae.kl_by_hand - vae.losses["kl"]) < 1e-4 * max(1.0, abs(vae.losses["kl"]))
    assert vae.updates["MaskVAE step"]["maskvae"] > 0
    one = stage_one_step(cfg, Run(run_dir))
    n = cfg.train.batch_size
    assert one.shapes()["I^out"] == (n, 3, s, s) and one.shapes()["style"][0] == n
    assert {"g/gan", "g/feat", "g/total", "d/real", "d/fake"} <= set(one.losses)
    assert one.updates["stage I"]["dmn"] > 0 and one.updates["stage I"]["disc"] > 0
