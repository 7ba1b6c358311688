"""Training mechanics at smoke size: exact resume, schedules, the NaN guard, clear errors, DDP (maskgan.train)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskgan.__main__ import main
from maskgan.checkpoint import latest_checkpoint
from maskgan.config import Config, ConfigError
from maskgan.device import PINNED_KERNELS, THREADS_ENV, pinned_kernel_env
from maskgan.errors import RunLocked, StageMissing, TrainingError
from maskgan.run import Run
from maskgan.train import make_trainer, train

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
    base = {"cadence.log_every": 1, "cadence.sample_every": 1000, "cadence.checkpoint_every": 2}
    return Config.preset("smoke").with_overrides({**base, **overrides})


def _weights(run_dir, stage):
    ckpt = latest_checkpoint(Path(run_dir) / stage)
    return {p.name: p.read_bytes() for p in sorted(ckpt.glob("*.safetensors"))}


def _fit(stage, cfg, run_dir, steps=None, dataset=None, **kw):
    return make_trainer(stage, cfg, run_dir, progress=False, **kw).fit(dataset or TinyFaces(), steps=steps)


# --- exact resume ------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["vae", "dmn"])
def test_resumed_run_ends_bitwise_identical_to_an_uninterrupted_one(tmp_path, stage):
    cfg = smoke()
    _fit(stage, cfg, tmp_path / "a")
    _fit(stage, cfg, tmp_path / "b", steps=2)  # "killed" after step 2
    _fit(stage, cfg, tmp_path / "b", resume=True)
    a, b = _weights(tmp_path / "a", stage), _weights(tmp_path / "b", stage)
    assert a.keys() == b.keys() and a == b
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / stage / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_ebst_resume_is_bitwise_identical_too(tmp_path):
    cfg = smoke(**{"train.ebst_steps": 4})
    for run in ("a", "b"):
        _fit("vae", cfg, tmp_path / run, steps=2)
    _fit("ebst", cfg, tmp_path / "a")
    _fit("ebst", cfg, tmp_path / "b", steps=2)
    _fit("ebst", cfg, tmp_path / "b", resume=True)
    assert _weights(tmp_path / "a", "ebst") == _weights(tmp_path / "b", "ebst")


def test_a_damaged_newest_checkpoint_resumes_bitwise_from_the_older_one(tmp_path, capsys):
    cfg = smoke(**{"cadence.checkpoint_every": 1, "cadence.keep_checkpoints": 3})
    _fit("dmn", cfg, tmp_path / "a")
    _fit("dmn", cfg, tmp_path / "b", steps=3)  # killed after step 3
    newest = tmp_path / "b" / "dmn" / "checkpoints" / "step_0000003" / "dmn.safetensors"
    data = bytearray(newest.read_bytes())
    data[-8:] = b"\x00\x11\x22\x33\x44\x55\x66\x77"
    newest.write_bytes(bytes(data))
    _fit("dmn", cfg, tmp_path / "b", resume=True)
    assert "skipping checkpoint" in capsys.readouterr().out
    assert _weights(tmp_path / "a", "dmn") == _weights(tmp_path / "b", "dmn")


def test_a_missing_latest_json_resumes_instead_of_starting_over(tmp_path):
    cfg = smoke()
    _fit("dmn", cfg, tmp_path / "a")
    _fit("dmn", cfg, tmp_path / "b", steps=2)
    (tmp_path / "b" / "dmn" / "checkpoints" / "latest.json").unlink()
    summary = _fit("dmn", cfg, tmp_path / "b", resume=True)
    assert summary["steps"] == 4 and summary["seconds_per_step"] is not None
    assert _weights(tmp_path / "a", "dmn") == _weights(tmp_path / "b", "dmn")


def _folder_dataset(root):
    """A prepared folder of 16 SynthFaces at 32 px, read with random flips (as the paper preset does)."""
    from maskgan.data.paired import PairedFolderDataset
    from maskgan.data.synthfaces import materialise
    if not (root / "meta.json").exists():
        materialise(root, counts={"train": 16, "val": 0, "test": 0}, size=32, progress=False)
    return PairedFolderDataset(root, "train", flip=True)


def test_resume_with_two_dataloader_workers_and_random_flips_is_bitwise(tmp_path):
    cfg = smoke(**{"data.num_workers": 2})
    data = _folder_dataset(tmp_path / "faces")
    _fit("dmn", cfg, tmp_path / "a", dataset=data)
    _fit("dmn", cfg, tmp_path / "b", steps=2, dataset=data)
    _fit("dmn", cfg, tmp_path / "b", resume=True, dataset=data)
    assert _weights(tmp_path / "a", "dmn") == _weights(tmp_path / "b", "dmn")


def test_flips_depend_on_seed_epoch_and_index_not_on_the_process():
    from maskgan.data import flip_draw
    draws = [flip_draw(0.5, 0, epoch, i) for epoch in range(4) for i in range(16)]
    assert 10 < sum(draws) < 54
    assert draws == [flip_draw(0.5, 0, epoch, i) for epoch in range(4) for i in range(16)]
    assert draws != [flip_draw(0.5, 1, epoch, i) for epoch in range(4) for i in range(16)]


# --- the run's identity and its schedule ---------------------------------------------------------

def test_a_run_dir_of_another_configuration_is_refused_with_the_difference(tmp_path):
    _fit("dmn", smoke(), tmp_path, steps=2)
    with pytest.raises(TrainingError, match=r"another configuration.*model\.dmn\.ngf: 8 there, 4 here"):
        _fit("dmn", smoke(**{"model.dmn.ngf": 4}), tmp_path, resume=True)


def test_resuming_after_changing_only_cadence_or_evaluation_settings_works(tmp_path):
    _fit("dmn", smoke(), tmp_path, steps=2)
    changed = smoke(**{"cadence.log_every": 2, "cadence.checkpoint_every": 1, "eval.faces": 7, "parser.lr": 0.5,
                       "data.num_workers": 0})
    assert _fit("dmn", changed, tmp_path, resume=True)["steps"] == 4


def test_extend_to_continues_a_finished_run_with_a_positive_lr_and_stays_bitwise(tmp_path):
    cfg = smoke()
    _fit("dmn", cfg, tmp_path / "a")  # finished at step 4: its LR decayed to 0
    assert Run(tmp_path / "a").read_log("dmn")[-1]["lr"] == 0.0
    summary = _fit("dmn", cfg, tmp_path / "a", resume=True, extend_to=8)
    assert summary["steps"] == 8 and summary["schedule_total"] == 8
    lrs = [r["lr"] for r in Run(tmp_path / "a").read_log("dmn") if r["step"] > 4]
    assert all(lr > 0 for lr in lrs[:-1]) and lrs[-1] == 0.0
    record = json.loads((latest_checkpoint(tmp_path / "a" / "dmn") / "config.json").read_text())
    assert record["schedule"] == {"total": 8, "extensions": [{"at_step": 4, "from": 4, "to": 8}]}
    # the same, killed in the middle of the extension and resumed
    _fit("dmn", cfg, tmp_path / "b")
    _fit("dmn", cfg, tmp_path / "b", resume=True, extend_to=8, steps=6)
    _fit("dmn", cfg, tmp_path / "b", resume=True)
    assert _weights(tmp_path / "a", "dmn") == _weights(tmp_path / "b", "dmn")


def test_steps_past_the_schedule_are_refused_instead_of_training_at_lr_zero(tmp_path):
    with pytest.raises(TrainingError, match=r"schedule ends at step 4.*--extend-to 8"):
        _fit("dmn", smoke(), tmp_path, steps=8)


def test_a_longer_configured_total_on_resume_asks_for_extend_to(tmp_path):
    _fit("dmn", smoke(), tmp_path)
    with pytest.raises(TrainingError, match=r"scheduled for 4 steps.*--extend-to 6"):
        _fit("dmn", smoke(**{"train.dmn_steps": 6}), tmp_path, resume=True)


@pytest.mark.parametrize("key", ["train.dmn_steps", "train.vae_steps", "parser.steps"])
def test_zero_or_negative_step_counts_are_config_errors(key):
    with pytest.raises(ConfigError, match=r"must be >= 1, got -5"):
        smoke(**{key: -5})


def test_zero_steps_are_refused_by_fit(tmp_path):
    with pytest.raises(TrainingError, match="positive number of steps"):
        _fit("dmn", smoke(), tmp_path, steps=0)


def test_a_run_saved_before_a_config_field_existed_still_resumes(tmp_path):
    _fit("vae", smoke(), tmp_path, steps=2)
    ckpt = latest_checkpoint(tmp_path / "vae")
    saved = json.loads((ckpt / "config.json").read_text())
    del saved["config"]["model"]["loss"]["vae_class_balance"]  # as if written by an older kit
    (ckpt / "config.json").write_text(json.dumps(saved))
    (ckpt / "manifest.json").unlink()  # older kits wrote no manifest either
    assert _fit("vae", smoke(), tmp_path, resume=True, steps=3)["steps"] == 3


def test_a_run_saved_before_the_config_was_split_by_concern_still_resumes(tmp_path):
    _fit("vae", smoke(), tmp_path, steps=2)
    ckpt = latest_checkpoint(tmp_path / "vae")
    saved = json.loads((ckpt / "config.json").read_text())
    old = saved["config"]
    old["train"].update({"log_every": 1, "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2,
                         "tensorboard": False, "parser_steps": 4, "eval_faces": 4})
    for section in ("cadence", "parser", "eval"):
        del old[section]
    del saved["schedule"]
    (ckpt / "config.json").write_text(json.dumps(saved))
    (ckpt / "manifest.json").unlink()
    assert _fit("vae", smoke(), tmp_path, resume=True)["steps"] == 4


# --- guards and messages ------------------------------------------------------------------------

def test_a_nan_loss_stops_with_the_term_and_step_and_keeps_the_last_checkpoint(tmp_path):
    cfg = smoke()
    _fit("dmn", cfg, tmp_path, steps=2)
    before = _weights(tmp_path, "dmn")
    with pytest.raises(TrainingError, match=r"loss term g/\w+ is nan at step 2.*step_0000002 is intact"):
        _fit("dmn", cfg, tmp_path, resume=True, dataset=TinyFaces(nan_from=0))
    assert latest_checkpoint(tmp_path / "dmn").name == "step_0000002"
    assert _weights(tmp_path, "dmn") == before


def test_a_blown_up_last_update_is_refused_instead_of_called_finished(tmp_path, capsys):
    code = main(["train", "dmn", "--preset", "smoke", "--run-dir", str(tmp_path), "--device", "cpu",
                 "--set", "train.lr=1e30", "--set", "train.dmn_steps=1", "--set", "cadence.sample_every=1000"])
    err = capsys.readouterr().err
    assert code == 2, "before: exit 0, and the editor rendered NaN"
    assert "after step 1 the weights of dmn are exploded (largest |w| = 1e+30 > 1e+06)" in err
    assert "no checkpoint was written yet" in err
    assert not Run(tmp_path).has("dmn") and not (tmp_path / "dmn" / "summary.json").exists()


def test_a_checkpoint_is_never_written_with_exploded_weights_nor_called_good(tmp_path, monkeypatch):
    from maskgan.train.gan import DMNTrainer
    original = DMNTrainer.train_step

    def blows_up(self, batch):
        terms = original(self, batch)  # the losses are computed before the update ...
        if self.step == 2:  # ... so the update of step 3 blows the weights up unseen by the loss guard
            with torch.no_grad():
                for p in self.raw("dmn").parameters():
                    p.mul_(1e30)
        return terms
    monkeypatch.setattr(DMNTrainer, "train_step", blows_up)
    cfg = smoke(**{"cadence.checkpoint_every": 1})
    with pytest.raises(TrainingError, match=r"after step 3 the weights of dmn are exploded .*nothing was saved with "
                                            r"them \(the last checkpoint \S+step_0000002 is intact, its weights checked"):
        _fit("dmn", cfg, tmp_path, steps=4)
    assert latest_checkpoint(tmp_path / "dmn").name == "step_0000002"


def test_resuming_after_a_kill_before_the_first_checkpoint_does_not_repeat_log_lines(tmp_path, monkeypatch):
    from maskgan.train.gan import DMNTrainer
    original = DMNTrainer.train_step

    def killed(self, batch):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self, batch)
    cfg = smoke(**{"cadence.checkpoint_every": 3})
    monkeypatch.setattr(DMNTrainer, "train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        _fit("dmn", cfg, tmp_path, steps=4)
    assert [r["step"] for r in Run(tmp_path).read_log("dmn")] == [1, 2] and not Run(tmp_path).has("dmn")
    monkeypatch.setattr(DMNTrainer, "train_step", original)
    _fit("dmn", cfg, tmp_path, steps=4, resume=True)
    assert [r["step"] for r in Run(tmp_path).read_log("dmn")] == [1, 2, 3, 4]  # before: [1, 2, 1, 2, 3, 4]


def test_an_existing_checkpoint_without_resume_asks_for_resume(tmp_path):
    _fit("vae", smoke(), tmp_path, steps=2)
    with pytest.raises(TrainingError, match="--resume"):
        _fit("vae", smoke(), tmp_path)


def test_ebst_without_a_maskvae_names_the_notebook_and_the_command(tmp_path):
    with pytest.raises(StageMissing, match=r"needs a trained MaskVAE.*01_maskvae_pretraining.*train vae"):
        _fit("ebst", smoke(), tmp_path, steps=2)


def test_a_second_process_on_a_locked_stage_fails_fast(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "dmn").mkdir(parents=True)
        (tmp_path / "dmn" / ".lock").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename,
                                                             "since": "now"}))
        with pytest.raises(RunLocked, match=str(holder.pid)):
            _fit("dmn", smoke(), tmp_path)
        assert not (tmp_path / "dmn" / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_released_after_training(tmp_path):
    _fit("dmn", smoke(), tmp_path, steps=2)
    assert not (tmp_path / "dmn" / ".lock").exists()


def test_a_partial_last_log_line_is_dropped_with_a_warning_naming_the_file(tmp_path):
    _fit("dmn", smoke(), tmp_path, steps=2)
    log = tmp_path / "dmn" / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 3, "g/ga')  # a full disk cut the append short
    with pytest.warns(UserWarning, match=r"log\.jsonl: dropping a damaged last line"):
        summary = _fit("dmn", smoke(), tmp_path, resume=True)
    assert summary["steps"] == 4
    assert [r["step"] for r in Run(tmp_path).read_log("dmn")] == [1, 2, 3, 4]


def test_training_writes_logs_samples_and_a_summary(tmp_path):
    summary = _fit("dmn", smoke(**{"cadence.sample_every": 2}), tmp_path, steps=2)
    log = Run(tmp_path).read_log("dmn")
    assert {"g/gan", "g/feat", "g/percept", "g/total", "d/real", "d/fake", "lr"} <= set(log[-1])
    assert (tmp_path / "dmn" / "samples" / "step_0000002.png").stat().st_size > 1000
    assert summary["steps"] == 2 and summary["seconds_per_step"] > 0
    assert json.loads((tmp_path / "dmn" / "summary.json").read_text())["steps"] == 2


def test_the_dmn_learns_on_a_fixed_batch(tmp_path):
    cfg = smoke(**{"model.loss.lambda_percept": 0.0, "train.lr": 1e-3, "train.dmn_steps": 40})
    _fit("dmn", cfg, tmp_path, dataset=TinyFaces(n=2))
    log = Run(tmp_path).read_log("dmn")
    assert log[-1]["g/feat"] < log[0]["g/feat"]


def test_unknown_amp_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="amp"):
        smoke(**{"train.amp": "fp8"})


def test_a_moved_config_key_names_its_new_place():
    with pytest.raises(ConfigError, match=r"'train.parser_steps' is now 'parser.steps'"):
        smoke(**{"train.parser_steps": 600})


def test_a_missing_celebamask_folder_says_how_to_prepare_it(tmp_path):
    from maskgan.data import build_dataset
    cfg = Config.preset("smoke").with_overrides({"data.dataset": "celebamask-hq", "data.data_root": str(tmp_path / "nope")})
    with pytest.raises(Exception, match="nope") as err:
        build_dataset(cfg.data, "train")
    assert "prepare" in str(err.value) or "data_prep" in str(err.value)


def test_ctrl_c_says_which_checkpoint_was_saved_and_how_to_continue(tmp_path, monkeypatch, capsys):
    from maskgan.train.gan import DMNTrainer
    original = DMNTrainer.train_step

    def interrupted(self, batch):
        if self.step == 3:
            raise KeyboardInterrupt
        return original(self, batch)
    monkeypatch.setattr(DMNTrainer, "train_step", interrupted)
    code = main(["train", "dmn", "--preset", "smoke", "--run-dir", str(tmp_path), "--device", "cpu",
                 "--set", "cadence.sample_every=1000"])
    err = capsys.readouterr().err
    assert code == 130
    assert "last checkpoint is step 2" in err and "--resume" in err and "Traceback" not in err
    assert not (tmp_path / "dmn" / ".lock").exists()


def test_ddp_with_two_gloo_processes_keeps_the_replicas_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "maskgan", "train", "dmn", "--preset", "smoke", "--device", "cpu", "--run-dir", str(tmp_path),
           "--steps", "3", "--set", "cadence.sample_every=1000"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "dmn" / "summary.json").read_text())
    assert summary["world_size"] == 2
    a, b = summary["weights_digest"]
    assert a == b
    assert latest_checkpoint(tmp_path / "dmn").name == "step_0000003"


def test_train_checks_a_folder_dataset_before_training_and_names_a_truncated_png(tmp_path):
    data = _folder_dataset(tmp_path / "faces")
    victim = data._images[data.names[5]]
    victim.write_bytes(victim.read_bytes()[:60])
    cfg = smoke(**{"data.dataset": "celebamask-hq", "data.data_root": str(tmp_path / "faces")})
    from maskgan.errors import DataError
    with pytest.raises(DataError, match=rf"(?s)1 of 16 pairs.*{victim} cannot be read as an image \(image file is "
                                        r"truncated"):
        train("dmn", cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "dmn" / "checkpoints").exists()


@pytest.mark.parametrize("threads", [1, 2])
def test_two_runs_with_one_seed_thread_count_and_instruction_set_are_bitwise_identical(tmp_path, threads):
    """When a CPU run repeats to the bit: the same seed, the same thread count and the same instruction
    set (torch's CPU capability and oneDNN's and MKL's ISA fix the order of every float sum), and only
    then. Two runs in one process share all three. Across thread counts or instruction sets nothing is
    promised: 1 against 2 threads, and AVX2 against AVX-512 kernels, gave other weights after 10 steps
    (docs/reproducibility.md). summary.json records the three for every stage."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        _fit("dmn", smoke(), tmp_path / "a")
        _fit("dmn", smoke(), tmp_path / "b")
    finally:
        torch.set_num_threads(before)
    assert _weights(tmp_path / "a", "dmn") == _weights(tmp_path / "b", "dmn")
    for run in ("a", "b"):
        kernels = json.loads((tmp_path / run / "dmn" / "summary.json").read_text())["kernels"]
        assert kernels["threads"] == threads and kernels["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


@pytest.mark.skipif(not pinned_kernel_env({}), reason="the pins apply to x86-64 CPUs with AVX2")
def test_two_processes_with_the_demo_pins_and_one_thread_count_train_bitwise_identical_weights(tmp_path):
    """What the demo relies on: its notebooks run in separate kernel processes, each started with one
    thread count and the instruction-set pins of maskgan.device.PINNED_KERNELS."""
    env = {**os.environ, **PINNED_KERNELS, THREADS_ENV: "1"}
    env.pop("OMP_NUM_THREADS", None)
    for run in ("a", "b"):
        subprocess.run([sys.executable, "-m", "maskgan", "train", "dmn", "--preset", "smoke", "--device", "cpu",
                        "--run-dir", str(tmp_path / run), "--set", "cadence.sample_every=1000"],
                       env=env, check=True, capture_output=True)
    assert _weights(tmp_path / "a", "dmn") == _weights(tmp_path / "b", "dmn")
    kernels = json.loads((tmp_path / "a" / "dmn" / "summary.json").read_text())["kernels"]
    assert kernels["cpu_capability"] == "AVX2" and kernels["threads"] == 1
    assert all(kernels[k] == v for k, v in PINNED_KERNELS.items())