"""The teaching helpers of the notebooks: diagrams with computed shapes, the latent walks of
notebook 02, the source view of the live steps, and the reading of the ablation (notebook 06)."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from maskgan import diagrams, manifold
from maskgan.config import Config
from maskgan.evaluation.records import Evaluation, PairFidelity, ParserRecord, Reference, Segmentation, StageEval
from maskgan.evaluation.report import read_ablation
from maskgan.inspect_training import source


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_dmn_shapes_follow_the_config_arithmetic(preset):
    cfg = Config.preset(preset)
    d, n, s = cfg.model.dmn, cfg.train.batch_size, cfg.data.size
    shapes = diagrams.dmn_shapes(cfg)
    w = 4 * d.enc_ch  # the SFT width
    assert shapes["A"] == shapes["SFT A"] == (n, w, s // 4, s // 4)
    assert shapes["B"] == shapes["SFT B"] == (n, w, s // 2 ** d.enc_n_down, s // 2 ** d.enc_n_down)
    assert shapes["style"] == (n, d.n_blocks * 2 * 2 * d.ngf * 2 ** d.n_down)
    assert shapes["down"] == shapes["blocks"] == (n, d.ngf * 2 ** d.n_down, s // 2 ** d.n_down, s // 2 ** d.n_down)
    assert shapes["I^out"] == (n, 3, s, s)


def test_the_paper_preset_has_the_demo_style_vector_and_latent():
    paper = Config.preset("paper")
    assert diagrams.dmn_shapes(paper)["style"] == (1, 16_384)
    e = diagrams.ebst_shapes(paper)
    assert e["z^inter"] == (1, 1024) and e["alpha"] == (1, 3, 512, 512) and len(e["D predictions"]) == 2


def test_diagrams_draw_every_preset_they_are_given():
    cfg = Config.preset("smoke")
    for draw in (diagrams.dmn_diagram, diagrams.ebst_diagram):
        fig = draw(diagrams.with_paper("smoke", cfg))
        text = "\n".join(t.get_text() for t in fig.axes[0].texts)
        assert "smoke" in text and "paper" in text and "\u00d7" in text
        matplotlib.pyplot.close(fig)
    assert list(diagrams.with_paper("paper", Config.preset("paper"))) == ["paper"]


@pytest.mark.parametrize("draw", [diagrams.dmn_diagram, diagrams.ebst_diagram], ids=["dmn", "ebst"])
def test_every_diagram_label_is_legible_at_readme_width(draw, tmp_path):
    """GitHub shows a README / docs image about DISPLAY_WIDTH_PX wide: the smallest font of the saved
    PNG, scaled to that width, is at least MIN_TEXT_PX tall (sub- and superscripts of a formula are
    smaller by design and not counted)."""
    from PIL import Image

    from maskgan.viz import save_figure
    dpi = 110
    fig = draw(diagrams.with_paper("cpu", Config.preset("cpu")))
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    width_px = Image.open(save_figure(fig, tmp_path / "diagram.png", dpi=dpi)).width
    matplotlib.pyplot.close(fig)
    smallest_px = min(sizes) * dpi / 72 * diagrams.DISPLAY_WIDTH_PX / width_px
    assert smallest_px >= diagrams.MIN_TEXT_PX, f"smallest label {smallest_px:.1f} px at README width"


def test_pixel_space_has_nothing_between_two_masks():
    a = torch.zeros(8, 8, dtype=torch.long)
    b = torch.full((8, 8), 3, dtype=torch.long)
    path = manifold.pixel_path(a, b, [-0.5, 0.0, 0.4, 0.6, 1.0, 1.5])
    assert manifold.changed_fraction(path, a).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_simulated_edits_follow_algorithm_1():
    from maskgan.nn import build_maskvae
    cfg = Config.preset("smoke")
    torch.manual_seed(0)
    vae = build_maskvae(cfg).eval()
    m = torch.randint(0, 19, (2, cfg.data.size, cfg.data.size))
    e = manifold.simulated_edits(vae, m[:1], m[1:], lambda_inter=2.5)
    assert e["M^inter"].shape == e["M^outer"].shape == (1, cfg.data.size, cfg.data.size)
    with torch.no_grad():
        z_inter = e["z_t"] + (e["z_ref"] - e["z_t"]) / 2.5
        expected = vae.decode(z_inter).argmax(1)
    assert torch.equal(expected, e["M^inter"])


def test_source_names_the_file_and_lines():
    from maskgan.train.gan import EBSTTrainer
    text = source(EBSTTrainer.stage_two)
    first = text.splitlines()[0]
    assert first.startswith("# maskgan/train/gan.py:") and "EBSTTrainer.stage_two" in first
    assert "def stage_two" in text


def _stage(updates, psnr, inside, outside, miou):
    return StageEval(training={"steps": updates, "generator_updates": updates}, recon_psnr=None, recon_ssim=None,
                     recon_parse=Segmentation(0.6, 0.2, 0.3, 100), swd={"swd_avg": 70.0},
                     edited_parse=Segmentation(0.6, miou, 0.3, 40),
                     edit=PairFidelity(psnr, None, inside, outside, None, None, 40))


def _evaluation(stages):
    return Evaluation(dataset="synthfaces", split="test", image_size=64, num_faces=100, seed=0, swd_seed=0,
                      swd_patches=128, test_faces="0..99", parser=ParserRecord(500, "ckpt", Segmentation(0.97, 0.71, 0.8)),
                      reference=Reference({"swd_avg": 30.8}, 100), fid_available=False, fid_note="", stages=stages,
                      edit_pairs_per_family=40, edit_families=["smile"])


README_RUN = {"p2p": _stage(1500, 14.19, 15.20, 14.23, 0.112), "dmn": _stage(1500, 18.75, 17.48, 19.59, 0.190),
              "ebst": _stage(2300, 19.19, 17.13, 20.38, 0.189), "dmn_matched": _stage(2300, 19.48, 17.25, 20.72, 0.193)}


def test_read_ablation_reads_this_runs_numbers():
    text = read_ablation(_evaluation(README_RUN), width=None)
    paragraph = text.splitlines()[-1]
    assert "best generator on edit PSNR is (b') stage I, EBST's updates (19.48 dB)" in paragraph
    assert "EBST against stage I: +0.44 dB edit PSNR (inside the edited region -0.35 dB, outside +0.79 dB)" in paragraph
    assert "EBST is ahead on edit PSNR and level on edited-mask mIoU (EBST had 2300 generator updates" in paragraph
    assert "both with 2300 generator updates): -0.29 dB, -0.004 mIoU" in paragraph
    assert "explained by its extra generator updates" in paragraph
    assert "+4.56 dB" in paragraph  # the style encoder: (b) against (a)
    assert "anecdote" in paragraph and "One training seed (0)" in paragraph
    for column in ("(a) Pix2PixHD-m", "(b) stage I", "(c) EBST", "(b')"):
        assert column in text


def test_read_ablation_credits_ebst_when_it_beats_the_control():
    stages = dict(README_RUN, ebst=_stage(2300, 20.10, 18.00, 21.00, 0.200))
    assert "EBST beats this control" in read_ablation(_evaluation(stages), width=None)


def test_read_ablation_without_the_control_says_how_to_get_it():
    text = read_ablation(_evaluation({k: README_RUN[k] for k in ("dmn", "ebst")}), width=None)
    assert "not in this run: (a) Pix2PixHD-m, (b') stage I, EBST's updates, (b'') stage I continued" in text
    assert "Without a control (b') or (b'')" in text and "python -m maskgan ablation" in text


def test_source_of_a_decorated_method_names_its_own_file():
    from maskgan.train.gan import EBSTTrainer
    assert source(EBSTTrainer.simulated_edits).startswith("# maskgan/train/gan.py:")  # under @torch.no_grad
