"""Training mechanics at smoke size: exact resume, NaN guard, clear errors, DDP (maskgan.train)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskgan.config import Config, ConfigError
from maskgan.train import TrainingError, latest_checkpoint, make_trainer

ROOT = Path(__file__).resolve().parents[1]


class TinyFaces(torch.utils.data.Dataset):
    """16 random 32x32 (image, label) pairs; ``nan_from`` makes images NaN from that index on."""

    def __init__(self, n=16, nan_from=None):
        self.n, self.nan_from = n, nan_from

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        image = torch.rand(3, 32, 32, generator=g) * 2 - 1
        if self.nan_from is not None and i >= self.nan_from:
            image = torch.full_like(image, float("nan"))
        return {"image": image, "label": torch.randint(0, 19, (32, 32), generator=g), "name": f"face{i}"}


def smoke(**overrides):
    base = {"train.log_every": 1, "train.sample_every": 1000, "train.checkpoint_every": 2}
    return Config.preset("smoke").with_overrides({**base, **overrides})


def _weights(run_dir, stage):
    ckpt = latest_checkpoint(Path(run_dir) / stage)
    return {p.name: p.read_bytes() for p in sorted(ckpt.glob("*.safetensors"))}


@pytest.mark.parametrize("stage", ["vae", "dmn"])
def test_resumed_run_ends_bitwise_identical_to_an_uninterrupted_one(tmp_path, stage):
    cfg = smoke()
    make_trainer(stage, cfg, tmp_path / "a", progress=False).fit(TinyFaces(), steps=4)
    make_trainer(stage, cfg, tmp_path / "b", progress=False).fit(TinyFaces(), steps=2)  # "killed" after step 2
    make_trainer(stage, cfg, tmp_path / "b", progress=False, resume=True).fit(TinyFaces(), steps=4)
    a, b = _weights(tmp_path / "a", stage), _weights(tmp_path / "b", stage)
    assert a.keys() == b.keys() and a == b
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / stage / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_ebst_resume_is_bitwise_identical_too(tmp_path):
    cfg = smoke()
    for run in ("a", "b"):
        make_trainer("vae", cfg, tmp_path / run, progress=False).fit(TinyFaces(), steps=2)
    make_trainer("ebst", cfg, tmp_path / "a", progress=False).fit(TinyFaces(), steps=4)
    make_trainer("ebst", cfg, tmp_path / "b", progress=False).fit(TinyFaces(), steps=2)
    make_trainer("ebst", cfg, tmp_path / "b", progress=False, resume=True).fit(TinyFaces(), steps=4)
    assert _weights(tmp_path / "a", "ebst") == _weights(tmp_path / "b", "ebst")


def test_a_nan_loss_stops_with_the_term_and_step_and_keeps_the_last_checkpoint(tmp_path):
    cfg = smoke(**{"train.vae_batch_size": 2})
    make_trainer("dmn", cfg, tmp_path, progress=False).fit(TinyFaces(), steps=2)
    before = _weights(tmp_path, "dmn")
    trainer = make_trainer("dmn", cfg, tmp_path, progress=False, resume=True)
    with pytest.raises(TrainingError, match=r"loss term g_\w+ is nan at step 2.*step_0000002 is intact"):
        trainer.fit(TinyFaces(nan_from=0), steps=4)
    assert latest_checkpoint(tmp_path / "dmn").name == "step_0000002"
    assert _weights(tmp_path, "dmn") == before


def test_a_run_dir_of_another_configuration_is_refused_with_the_difference(tmp_path):
    make_trainer("dmn", smoke(), tmp_path, progress=False).fit(TinyFaces(), steps=2)
    other = smoke(**{"model.dmn.ngf": 4})
    with pytest.raises(TrainingError, match=r"another configuration.*model\.dmn\.ngf: 8 there, 4 here"):
        make_trainer("dmn", other, tmp_path, progress=False, resume=True).fit(TinyFaces(), steps=4)


def test_an_existing_checkpoint_without_resume_asks_for_resume(tmp_path):
    make_trainer("vae", smoke(), tmp_path, progress=False).fit(TinyFaces(), steps=2)
    with pytest.raises(TrainingError, match="--resume"):
        make_trainer("vae", smoke(), tmp_path, progress=False).fit(TinyFaces(), steps=4)


def test_ebst_without_a_maskvae_says_which_step_to_run_first(tmp_path):
    with pytest.raises(TrainingError, match=r"needs a trained MaskVAE.*train vae"):
        make_trainer("ebst", smoke(), tmp_path, progress=False).fit(TinyFaces(), steps=2)


def test_training_writes_logs_samples_and_a_summary(tmp_path):
    cfg = smoke(**{"train.sample_every": 2})
    summary = make_trainer("dmn", cfg, tmp_path, progress=False).fit(TinyFaces(), steps=2)
    log = [json.loads(line) for line in (tmp_path / "dmn" / "log.jsonl").read_text().splitlines()]
    assert {"g_gan", "g_feat", "g_percept", "g_total", "d_d_real", "d_d_fake", "lr"} <= set(log[-1])
    assert (tmp_path / "dmn" / "samples" / "step_0000002.png").stat().st_size > 1000
    assert summary["steps"] == 2 and summary["seconds_per_step"] > 0
    assert json.loads((tmp_path / "dmn" / "summary.json").read_text())["steps"] == 2


def test_the_dmn_learns_on_a_fixed_batch(tmp_path):
    cfg = smoke(**{"model.loss.lambda_percept": 0.0, "train.lr": 1e-3})
    trainer = make_trainer("dmn", cfg, tmp_path, progress=False)
    trainer.fit(TinyFaces(n=2), steps=40)
    log = [json.loads(line) for line in (tmp_path / "dmn" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["g_feat"] < log[0]["g_feat"]


def test_unknown_amp_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="amp"):
        smoke(**{"train.amp": "fp8"})


def test_a_missing_celebamask_folder_says_how_to_prepare_it(tmp_path):
    from maskgan.data import build_dataset
    cfg = Config.preset("smoke").with_overrides({"data.dataset": "celebamask-hq", "data.data_root": str(tmp_path / "nope")})
    with pytest.raises(Exception, match="nope") as err:
        build_dataset(cfg.data, "train")
    assert "prepare" in str(err.value) or "data_prep" in str(err.value)


def test_ddp_with_two_gloo_processes_keeps_the_replicas_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "maskgan", "train", "dmn", "--preset", "smoke", "--device", "cpu", "--run-dir", str(tmp_path),
           "--steps", "3", "--set", "train.sample_every=1000"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "dmn" / "summary.json").read_text())
    assert summary["world_size"] == 2
    a, b = summary["weights_digest"]
    assert a == b
    assert latest_checkpoint(tmp_path / "dmn").name == "step_0000003"


def test_a_run_saved_before_a_config_field_existed_still_resumes(tmp_path):
    make_trainer("vae", smoke(), tmp_path, progress=False).fit(TinyFaces(), steps=2)
    ckpt = latest_checkpoint(tmp_path / "vae")
    saved = json.loads((ckpt / "config.json").read_text())
    del saved["config"]["train"]["eval_faces"]  # as if written by an older kit
    (ckpt / "config.json").write_text(json.dumps(saved))
    summary = make_trainer("vae", smoke(), tmp_path, progress=False, resume=True).fit(TinyFaces(), steps=3)
    assert summary["steps"] == 3
