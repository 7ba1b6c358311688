"""User-like stroke edits (maskgan.evaluation.strokes): what they paint and how they are scored."""
import numpy as np
import torch

from maskgan.data import build_dataset
from maskgan.config import Config
from maskgan.evaluation.strokes import STROKE_CLASSES, evaluate_strokes, stroke_edits, user_strokes
from maskgan.labels import CLASS_IDS


def _labels(n=12, size=64):
    ds = build_dataset(Config.preset("cpu").data, "test")
    return torch.stack([ds[i]["label"] for i in range(n)]), ds


def test_strokes_are_repeatable_per_face_and_differ_between_faces():
    labels, _ = _labels()
    a, ra = stroke_edits(labels, range(12), seed=0)
    b, rb = stroke_edits(labels[5:7], [5, 6], seed=0)  # face 5 alone, in another batch: the same strokes
    assert torch.equal(a[5:7], b) and torch.equal(ra[5:7], rb)
    c, _ = stroke_edits(labels, range(12), seed=1)
    assert not torch.equal(a, c)
    assert len({tuple(r.flatten().nonzero().flatten()[:5].tolist()) for r in ra}) > 1


def test_strokes_change_only_the_painted_pixels_with_the_app_brush_and_valid_classes():
    labels, _ = _labels()
    edited, region = stroke_edits(labels, range(12), seed=0)
    assert ((edited != labels) & ~region).sum() == 0  # nothing changes outside the strokes
    assert (edited != labels).any(dim=(1, 2)).float().mean() > 0.8  # almost every face is changed
    assert 0 <= int(edited.min()) and int(edited.max()) < 19
    frac = region.float().mean(dim=(1, 2))
    assert float(frac.min()) > 0 and float(frac.max()) < 0.35  # strokes, not repaintings of the face


def test_strokes_are_partial_and_misplaced_parts_over_many_classes():
    labels, _ = _labels(40)
    rng_classes, on_own, elsewhere = set(), 0, 0
    for i, lab in enumerate(labels.numpy()):
        for pts, cls, radius in user_strokes(lab, np.random.default_rng([0, i])):
            assert 1 <= radius <= 4 and 2 <= len(pts) <= 6
            rng_classes.add(cls)
            x, y = pts[0]
            if lab[int(round(y)), int(round(x))] == cls:
                on_own += 1
            else:
                elsewhere += 1
    assert len(rng_classes) >= 10 and rng_classes <= {CLASS_IDS[c] for c in STROKE_CLASSES}
    assert on_own >= 10 and elsewhere >= 10


class _Painter(torch.nn.Module):
    """A 'generator' that paints each class a fixed colour (style ignored): the edit always takes."""

    def __init__(self):
        super().__init__()
        self.colours = torch.linspace(-1, 1, 19)

    def style(self, image, mask):
        return image

    def render(self, mask, style):
        return (mask * self.colours[None, :, None, None]).sum(1, keepdim=True).repeat(1, 3, 1, 1)


class _Oracle:
    """A 'parser' that inverts the painter exactly."""

    def parse(self, images):
        return ((images[:, 0] + 1) / 2 * 18).round().long()


class _Copier(_Painter):
    """A 'generator' that ignores the mask and returns the style image (the edit never takes)."""

    def render(self, mask, style):
        return style


def test_scores_tell_an_edit_that_takes_from_one_that_does_not():
    _, ds = _labels()
    r = evaluate_strokes({"dmn": _Painter(), "p2p": _Copier()}, ds, _Oracle(), n=6, seed=0, batch_size=4)
    paint, copy = r["stages"]["dmn"], r["stages"]["p2p"]
    assert paint["edited_mean_iou"] == 1.0 and paint["stroke_accuracy"] == 1.0
    assert copy["stroke_accuracy"] < 0.5
    # away from the strokes the copier returns the original exactly; the painter is the same with or without the edit
    assert copy["psnr_outside"] == copy["recon_psnr_outside"] == 100.0
    assert abs(paint["psnr_outside"] - paint["recon_psnr_outside"]) < 1e-4
    assert r["faces"] == 6 and r["stroke_pixels_mean"] > 0


# --- the study over seeds (maskgan.evaluation.study) -------------------------------------------

def _run_eval(seed, ebst_psnr, ebst_stroke, dmn_psnr=20.0, dmn_stroke=0.5):
    from test_teaching import _evaluation, _stage
    e = _evaluation({"dmn": _stage(1000, dmn_psnr, 18.0, 21.0, 0.4), "ebst": _stage(2000, ebst_psnr, 18.0, 21.0, 0.4),
                     "dmn_continued": _stage(2000, dmn_psnr + 0.1, 18.0, 21.0, 0.4)})
    e.seed = seed
    e.strokes = {"stages": {s: {"edited_mean_iou": v, "stroke_accuracy": v, "psnr_outside": 25.0,
                                "recon_psnr_outside": 26.0}
                            for s, v in (("dmn", dmn_stroke), ("ebst", ebst_stroke), ("dmn_continued", dmn_stroke))}}
    return e


def test_the_study_gives_mean_and_sample_std_over_runs_and_per_run_differences():
    from maskgan.evaluation.study import format_study, study
    r = study({"s0": _run_eval(0, 20.5, 0.60), "s1": _run_eval(1, 20.7, 0.62), "s2": _run_eval(2, 20.9, 0.64)})
    e = r["stages"]["ebst"]["edit_psnr"]
    assert r["seeds"] == [0, 1, 2] and e["n"] == 3 and abs(e["mean"] - 20.7) < 1e-9 and abs(e["std"] - 0.2) < 1e-9
    d = r["differences"]["dmn"]["stroke_miou"]
    assert abs(d["mean"] - 0.12) < 1e-9 and abs(d["std"] - 0.02) < 1e-9
    text = format_study(r)
    assert "20.70 +- 0.20 (3)" in text and "(c) EBST - (b'') stage I continued" in text
    assert "edit PSNR: EBST better (p = 0.035)" in text  # differences 0.4, 0.6, 0.8: t = 5.2, 2 df


def test_a_difference_inside_the_spread_is_read_as_no_effect():
    from maskgan.evaluation.study import format_study, study
    r = study({"a": _run_eval(0, 20.0, 0.40, dmn_psnr=20.0), "b": _run_eval(1, 20.3, 0.60, dmn_psnr=20.0),
               "c": _run_eval(2, 19.6, 0.45, dmn_psnr=20.0)})
    assert "edit PSNR: no significant difference" in format_study(r)


def test_two_standard_errors_at_three_runs_is_not_significant():
    # EBST - (b'') = 0.1, 0.3, 0.2 dB: mean 0.2, two standard errors 0.115, but t = 3.46 on 2 degrees of
    # freedom gives p = 0.074, so the study must not call it a finding
    from maskgan.evaluation.study import format_study, study
    r = study({"a": _run_eval(0, 20.2, 0.5), "b": _run_eval(1, 20.4, 0.5), "c": _run_eval(2, 20.3, 0.5)})
    assert "edit PSNR: no significant difference (p = 0.074)" in format_study(r)


def test_study_train_shares_stage_one_and_varies_what_starts_from_it(tmp_path, capsys):
    import torch as _torch

    from maskgan.__main__ import main
    from maskgan.run import Run
    _torch.set_num_threads(1)
    argv = ["study", "--train", "--preset", "smoke", "--root", str(tmp_path), "--seeds", "0,1", "--n", "2",
            "--edits", "1", "--set", "train.ebst_steps=2", "--set", "cadence.sample_every=1000"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 runs (training seeds 0, 1)" in out and "(c) EBST - (b'') stage I continued" in out
    a, b = Run(tmp_path / "seed_0"), Run(tmp_path / "seed_1")
    same = a.latest("dmn").weights("dmn").read_bytes() == b.latest("dmn").weights("dmn").read_bytes()
    differ = a.latest("ebst").weights("dmn").read_bytes() != b.latest("ebst").weights("dmn").read_bytes()
    assert same and differ
    assert not b.has("p2p") and a.has("p2p")  # the baseline is trained once
    # every run is scored on the same stroke edits, whatever its training seed
    assert a.read_metrics()["eval"]["strokes"]["seed"] == b.read_metrics()["eval"]["strokes"]["seed"] == 0
