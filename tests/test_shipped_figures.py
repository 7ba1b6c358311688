"""The shipped models' figures (``python -m maskgan publish-figures --pretrained``,
maskgan.pipeline.publish_pretrained_figures): notebook 04's live EBST iteration drawn with the shipped
MaskVAE, EBST DMN and blender, next to the evaluation figures, and nothing written into pretrained/."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from maskgan import pretrained as pt
from maskgan.inspect_training import ebst_iteration
from maskgan.labels import one_hot
from maskgan.nn import build_blender
from maskgan.pipeline import publish_pretrained_figures


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _tree(folder):
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_trained_ebst_iteration_renders_with_the_ebst_dmn_and_blender():
    run = pt.pretrained_run()
    it = ebst_iteration(run.config("ebst"), run, device="cpu", trained=True)
    ebst = run.require("ebst")
    assert it.start.startswith(f"EBST, step {ebst.step}")
    # stage I runs first, before any update: I^out is the shipped EBST generator's reconstruction
    g = run.generator("ebst")[0]
    mask = one_hot(it.m_t)
    with torch.no_grad():
        expected = g.render(mask, g.style(it.i_t, mask)).float()
        blender = ebst.load("blender", build_blender(run.config("ebst"))).eval()
        blend, alpha = blender(it.i_inter, it.i_outer)
    assert torch.allclose(it.i_out, expected, atol=1e-4)
    # the blender is the shipped one (the optimizer steps after stage II's forward pass)
    assert torch.allclose(it.alpha, alpha, atol=1e-5) and torch.allclose(it.i_blend, blend, atol=1e-5)


def test_publishing_the_shipped_figures_draws_the_ebst_iteration_and_writes_nothing_into_pretrained(tmp_path):
    shipped = pt.pretrained_dir(pt.DEFAULT_PRETRAINED)
    before = _tree(shipped)
    written = publish_pretrained_figures(dest=tmp_path)
    names = {p.name for p in written}
    assert "04_ebst_iteration.png" in names and "pretrained_composite_examples.png" in names
    assert all(p.parent == tmp_path and p.stat().st_size > 10_000 for p in written)
    assert _tree(shipped) == before
