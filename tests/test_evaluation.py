"""Evaluation and ablation (maskgan.evaluation), the parser and p2p stages, on a smoke run trained here.

The metrics themselves have known-answer tests in test_metrics.py; these tests specify what the
orchestration measures, records and reports.
"""
import json
import math

import pytest
import torch

from maskgan.__main__ import main
from maskgan.config import Config
from maskgan.data.synthfaces import EDIT_FAMILIES
from maskgan.errors import StageMissing
from maskgan.evaluation import Evaluation, eval_figures, evaluate_run, format_eval_table, run_ablation
from maskgan.labels import one_hot
from maskgan.nn.baseline import MaskOnlyGenerator, build_p2p
from maskgan.checkpoint import latest_checkpoint
from maskgan.run import Run
from maskgan.train import make_trainer, train
from maskgan.data import class_weights

GENERATORS = ("p2p", "dmn", "ebst", "dmn_matched", "dmn_continued")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads make these tiny
    convolutions up to ~50x slower whenever the other core is busy. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smoke_cfg(**overrides):
    base = {"cadence.sample_every": 1000, "train.vae_steps": 2, "train.dmn_steps": 2, "train.ebst_steps": 2}
    return Config.preset("smoke").with_overrides({**base, **overrides})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A smoke run with every stage the evaluation compares (2 steps each), evaluated once."""
    run_dir = tmp_path_factory.mktemp("run")
    cfg = smoke_cfg()
    for stage in ("vae", "dmn", "ebst", "p2p", "dmn_matched", "dmn_continued"):
        train(stage, cfg, run_dir, progress=False)
    metrics = evaluate_run(run_dir, n=4, n_edits=2)
    return run_dir, cfg, metrics


# --- evaluate_run ---------------------------------------------------------------------------

def test_evaluate_run_returns_a_typed_record_and_writes_it_to_metrics_json(run):
    run_dir, _, m = run
    assert isinstance(m, Evaluation) and list(m.stages) == list(GENERATORS)
    for stage in GENERATORS:
        s = m.stages[stage]
        assert s.edited_parse is not None and s.edit is not None and set(s.edit_families) == set(EDIT_FAMILIES)
        assert "swd_avg" in s.swd and s.recon_parse.n == 4
    assert (m.num_faces, m.edit_pairs_per_family) == (4, 2) and m.maskvae is not None and m.seconds > 0
    recorded = Run(run_dir).read_metrics()["eval"]
    assert recorded == json.loads(json.dumps(m.to_dict()))  # recorded as returned, JSON-clean
    assert Evaluation.from_dict(recorded) == Evaluation.from_dict(m.to_dict())  # and read back as a record


def test_every_edit_family_is_scored_for_every_stage_and_for_the_no_edit_reference(run):
    _, _, m = run
    assert m.edit_families == list(EDIT_FAMILIES)
    for stage in GENERATORS:
        fams = m.stages[stage].edit_families
        assert set(fams) == set(EDIT_FAMILIES)
        assert all(f.n == 2 for f in fams.values())
    assert set(m.reference.no_edit_families) == set(EDIT_FAMILIES)


def _numbers(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _numbers(v, f"{prefix}{k}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


def test_scores_are_finite_and_in_their_ranges(run):
    _, _, m = run
    d = m.to_dict()
    for name, v in _numbers({"stages": d["stages"], "parser": d["parser"], "reference": d["reference"]}):
        assert math.isfinite(v), name
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("pixel_accuracy", "mean_iou", "mean_accuracy"):
            assert 0.0 <= v <= 1.0, name
        elif leaf.startswith("psnr"):
            assert 0.0 < v <= 100.0, name
        elif leaf.startswith("ssim"):
            assert -1.0 <= v <= 1.0, name
        elif leaf.startswith("swd"):
            assert v >= 0.0, name
    assert m.fid_available or "Inception" in m.fid_note  # skipped FID says how to get it


def test_the_edit_region_holds_every_pixel_an_edit_changes(run):
    # the unedited original equals the ground-truth edit outside the region (PSNR at its 100 dB cap)
    # and differs inside it: "outside" scores only what an edit must leave alone
    no_edit = run[2].reference.no_edit
    assert no_edit.psnr_outside == pytest.approx(100.0)
    assert no_edit.psnr_inside < 40.0


def test_training_record_counts_ebst_on_top_of_its_stage_one_pretraining(run):
    stages = run[2].stages
    assert stages["dmn"].training == {"steps": 2, "generator_updates": 2}
    assert stages["p2p"].training == {"steps": 2, "generator_updates": 2}
    # EBST starts from the 2-step stage-I DMN and updates it twice per iteration (stage I, stage II)
    assert stages["ebst"].training == {"steps": 2, "pretrained_dmn_steps": 2, "generator_updates": 6}
    # the control: stage I alone for EBST's total, dmn_steps + 2 x ebst_steps
    assert stages["dmn_matched"].training == {"steps": 6, "generator_updates": 6}
    # the second control: stage I continued from the 2-step stage I for 2 x ebst_steps steps
    assert stages["dmn_continued"].training == {"steps": 4, "pretrained_dmn_steps": 2, "generator_updates": 6}


def test_maskvae_reconstruction_and_interpolation_smoothness_are_recorded(run):
    vae = run[2].maskvae
    assert 0.0 <= vae.recon_mean_iou <= 1.0 and vae.interp_steps == 9
    assert 0.0 <= vae.interp_change_mean <= vae.interp_change_max <= 1.0


def test_a_run_without_any_generator_names_the_notebooks_and_commands_to_run(tmp_path):
    train("vae", smoke_cfg(), tmp_path, progress=False)  # a MaskVAE alone is not enough
    with pytest.raises(StageMissing, match=r"03_dmn_stage1.*python -m maskgan train dmn.*maskgan ablation"):
        evaluate_run(tmp_path)


def test_evaluate_reuses_the_trained_parser_and_can_refuse_to_train_one(run, tmp_path):
    run_dir, cfg, m = run
    ckpt = latest_checkpoint(run_dir / "parser")
    assert m.parser.steps == cfg.parser.steps and ckpt is not None
    again = evaluate_run(run_dir, n=2, n_edits=1, train_parser=False, record=False)
    assert again.parser.training_seconds is None and latest_checkpoint(run_dir / "parser") == ckpt
    train("dmn", smoke_cfg(), tmp_path, progress=False)
    with pytest.raises(StageMissing, match="python -m maskgan train parser"):
        evaluate_run(tmp_path, train_parser=False)


# --- the Pix2PixHD-m baseline ----------------------------------------------------------------

def test_p2p_baseline_maps_a_mask_to_an_image_of_the_same_size():
    net = build_p2p(Config.preset("smoke"))
    mask = one_hot(torch.randint(0, 19, (3, 32, 32)))
    out = net(mask)
    assert out.shape == (3, 3, 32, 32) and out.abs().max() <= 1.0
    assert net.style(torch.zeros(3, 3, 32, 32), mask).shape == (3, 0)  # no style path


def test_p2p_baseline_ignores_the_style_image():
    torch.manual_seed(0)
    net = MaskOnlyGenerator(ngf=4, n_down=2, n_blocks=1).eval()
    mask = one_hot(torch.randint(0, 19, (1, 32, 32)))
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(mask, a), net(mask, b))
        assert torch.equal(net.render(mask, net.style(a, mask)), net.render(mask, net.style(b, mask)))


def test_p2p_baseline_rejects_a_label_map_and_names_the_fix():
    with pytest.raises(ValueError, match="one_hot"):
        MaskOnlyGenerator(ngf=4, n_down=2, n_blocks=1)(torch.zeros(1, 32, 32))


def test_p2p_stage_trains_with_the_stage_one_losses(run):
    run_dir = run[0]
    ckpt = latest_checkpoint(run_dir / "p2p")
    assert {p.name for p in ckpt.glob("*.safetensors")} == {"p2p.safetensors", "disc.safetensors"}
    terms = json.loads((run_dir / "p2p" / "log.jsonl").read_text().splitlines()[-1])
    assert {"g/gan", "g/feat", "g/percept", "d/total"} <= set(terms)  # Eq. 6 terms and D's loss


# --- the parser stage ------------------------------------------------------------------------

def test_parser_stage_resumes_bitwise_identical_to_an_uninterrupted_run(tmp_path):
    from maskgan.data import build_dataset
    cfg = smoke_cfg()
    data = build_dataset(cfg.data, "train", train=True)
    make_trainer("parser", cfg, tmp_path / "a", progress=False).fit(data, steps=4)
    make_trainer("parser", cfg, tmp_path / "b", progress=False).fit(data, steps=2)
    make_trainer("parser", cfg, tmp_path / "b", progress=False, resume=True).fit(data, steps=4)
    a, b = (latest_checkpoint(tmp_path / r / "parser") / "parser.safetensors" for r in ("a", "b"))
    assert a.parent.name == b.parent.name == "step_0000004"
    assert a.read_bytes() == b.read_bytes()


def test_parser_loss_weights_rare_classes_up_and_averages_one_per_pixel():
    labels = torch.zeros(1, 10, 10, dtype=torch.long)
    labels[0, :2, :5] = 4  # l_eye: 10 % of the pixels, background 90 %
    w = class_weights([{"label": labels[0]}], balance=0.5)
    assert w[4] / w[0] == pytest.approx(3.0)  # sqrt(0.9 / 0.1)
    assert (w[0] * 0.9 + w[4] * 0.1).item() == pytest.approx(1.0)
    assert class_weights([{"label": labels[0]}], balance=0.0) is None


# --- reporting, figures, CLI, ablation ---------------------------------------------------------

def test_table_names_every_stage_the_step_counts_and_every_family(run):
    text = format_eval_table(Run(run[0]).read_metrics())  # the whole metrics.json works too
    for name in ("p2p", "dmn", "ebst", "generator updates", "no edit", *EDIT_FAMILIES):
        assert name in text
    with pytest.raises(ValueError, match="maskgan evaluate"):
        format_eval_table({"data": {}})


def test_eval_figures_are_returned_and_saved_in_the_run(run):
    run_dir, _, m = run
    figs = eval_figures(run_dir, m, families=("smile", "add_hat"))
    assert set(figs) == {"06_mask_fidelity", "06_edit_psnr", "06_edit_examples"}
    assert all((run_dir / "figures" / f"{name}.png").stat().st_size > 0 for name in figs)
    import matplotlib.pyplot as plt
    for fig in figs.values():
        plt.close(fig)


def test_cli_evaluate_prints_the_table_and_fails_clearly_without_a_generator(run, tmp_path, capsys):
    assert main(["evaluate", "--run-dir", str(run[0]), "--n", "2", "--edits", "1", "--device", "cpu"]) == 0
    assert "ebst (EBST)" in capsys.readouterr().out
    assert main(["evaluate", "--run-dir", str(tmp_path)]) == 2
    assert "has no trained generator" in capsys.readouterr().err


def test_ablation_trains_only_the_stages_a_run_lacks(run, tmp_path):
    import shutil
    run_dir, cfg, _ = run
    for stage in ("vae", "dmn", "ebst", "parser"):  # everything but the baseline and the control
        shutil.copytree(run_dir / stage, tmp_path / stage)
    assert not Run(tmp_path).is_complete("p2p", cfg)
    m = run_ablation(tmp_path, cfg, n=2, n_edits=1, progress=False)
    assert m.trained_now == ["p2p", "dmn_matched", "dmn_continued"]
    assert all(Run(tmp_path).is_complete(s, cfg) for s in ("p2p", "dmn_matched", "dmn_continued"))
    assert list(m.stages) == list(GENERATORS)


def test_a_longer_parser_budget_trains_the_existing_parser_on_with_a_new_schedule(run, tmp_path):
    import shutil
    run_dir, cfg, _ = run
    for stage in ("vae", "dmn", "parser"):
        shutil.copytree(run_dir / stage, tmp_path / stage)
    m = evaluate_run(tmp_path, n=2, n_edits=0, cfg=cfg.with_overrides({"parser.steps": 6}), record=False)
    assert m.parser.steps == 6 and m.parser.training_seconds is not None
    record = json.loads((latest_checkpoint(tmp_path / "parser") / "config.json").read_text())
    assert record["schedule"]["extensions"] == [{"at_step": 4, "from": 4, "to": 6}]


def test_learning_curves_measure_every_kept_checkpoint_and_draw_them(tmp_path):
    from maskgan.evaluation.curves import learning_curve
    cfg = smoke_cfg(**{"train.dmn_steps": 4, "train.vae_steps": 4, "cadence.checkpoint_every": 2,
                       "cadence.keep_checkpoints": 10})
    for stage in ("vae", "dmn"):
        train(stage, cfg, tmp_path, progress=False)
    curve = learning_curve(tmp_path, "dmn", n=2, n_edits=1, progress=False)
    assert [p["step"] for p in curve["points"]] == [2, 4]
    assert all(p["recon_psnr"] > 0 and p["edit_psnr"] > 0 and 0 <= p["recon_mean_iou"] <= 1 for p in curve["points"])
    assert json.loads((tmp_path / "curves" / "dmn.json").read_text()) == json.loads(json.dumps(curve))
    assert (tmp_path / "figures" / "curve_dmn.png").stat().st_size > 0
    vae = learning_curve(tmp_path, "vae", n=4, progress=False)
    assert [p["step"] for p in vae["points"]] == [2, 4] and 0 <= vae["points"][-1]["recon_mean_iou"] <= 1
    assert main(["curves", "--run-dir", str(tmp_path), "--stage", "dmn", "--n", "2", "--edits", "0",
                 "--every", "2"]) == 0
