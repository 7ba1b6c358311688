"""The stage registry and the run directory (maskgan.stages, maskgan.run): one declaration per stage,
and everything else asks them."""
import re
from pathlib import Path

import pytest
import torch

from maskgan import stages
from maskgan.__main__ import build_parser, main
from maskgan.config import Config
from maskgan.errors import ConfigError, StageMissing
from maskgan.run import Run
from maskgan.stages import STAGES, Stage, generator_stages, get_stage, identity
from maskgan.train.gan import DMNTrainer

PACKAGE = Path(__file__).resolve().parents[1] / "maskgan"


class ToyTrainer(DMNTrainer):
    """A toy stage: the DMN trained with a pixel L1 loss alone (no discriminator)."""
    stage = "toy"

    def build(self):
        from maskgan.nn import build_dmn
        self.nets["dmn"] = build_dmn(self.cfg)
        self.make_optimizer("G", self.nets["dmn"].parameters(), self.tc.lr)

    def train_step(self, batch):
        from maskgan.labels import one_hot
        out = self.nets["dmn"](one_hot(batch["label"]), batch["image"])
        loss = (out - batch["image"]).abs().mean()
        self.optimize("G", loss)
        return {"l1": loss}


@pytest.fixture
def toy():
    """One declaration: the CLI, the run directory, the evaluation and the messages pick it up."""
    stage = stages.register(Stage(
        name="toy", title="toy L1", role="baseline", trainer=ToyTrainer, steps=lambda c: 2,
        batch_size=lambda c: c.train.batch_size, nets=("dmn",), generator="dmn", identity=("model.dmn", "seed"),
        summary="a toy generator trained with L1 alone"))
    yield stage
    stages.unregister("toy")


def smoke():
    return Config.preset("smoke").with_overrides({"cadence.sample_every": 1000, "train.dmn_steps": 2})


def test_the_kit_declares_its_six_stages_in_training_order():
    assert list(STAGES) == ["vae", "dmn", "ebst", "p2p", "dmn_matched", "dmn_continued", "parser"]
    assert generator_stages() == ["p2p", "dmn", "ebst", "dmn_matched", "dmn_continued"]


def test_each_stage_fact_is_declared_once_in_the_package():
    """No other module lists the stages: stage names appear as literal tuples only in maskgan/stages.py."""
    pattern = re.compile(r"""\(\s*["'](vae|dmn|ebst|p2p)["']\s*,\s*["'](vae|dmn|ebst|p2p|dmn_matched)["']""")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "stages.py" and pattern.search(p.read_text())]
    assert offenders == []


def test_step_budgets_come_from_the_declarations():
    cfg = Config.preset("cpu")
    assert [get_stage(s).steps(cfg) for s in STAGES] == [700, 1500, 400, 1500, 2300, 800, 500]
    assert get_stage("ebst").updates_per_step == 2 and get_stage("ebst").starts_from == "dmn"


def test_identity_leaves_out_cadence_evaluation_and_step_counts():
    cfg = Config.preset("cpu")
    keys = identity("dmn", cfg)
    assert "model.dmn.ngf" in keys and "train.lr" in keys and "seed" in keys
    assert not any(k.startswith(("cadence.", "eval.", "parser.")) for k in keys)
    assert "train.dmn_steps" not in keys and "data.num_workers" not in keys
    assert "parser.base" in identity("parser", cfg) and "model.dmn.ngf" not in identity("parser", cfg)


def test_an_unknown_stage_lists_the_stages():
    with pytest.raises(ConfigError, match="unknown training stage 'gan'.*vae, dmn, ebst"):
        get_stage("gan")


def test_a_missing_stage_names_its_notebook_and_command(tmp_path):
    with pytest.raises(StageMissing, match=r"01_maskvae_pretraining.*--only 01.*python -m maskgan train vae"):
        Run(tmp_path).require("vae")
    with pytest.raises(StageMissing, match=r"python -m maskgan train p2p --run-dir"):
        Run(tmp_path).require("p2p")


def _config_of(options: str) -> Config:
    """The config that `python -m maskgan train vae --run-dir R <options>` builds."""
    import shlex
    from maskgan.__main__ import _run_config
    args = build_parser().parse_args(["train", "vae", "--run-dir", "R", *shlex.split(options)])
    return _run_config(args)[0]


@pytest.mark.parametrize("cfg", [
    Config.preset("smoke"),
    Config.preset("cpu"),
    Config.preset("smoke").with_overrides({"train.vae_steps": 10, "model.loss.gan_mode": "hinge", "seed": 3,
                                           "train.betas": [0.0, 0.99], "device": "cpu"}),
    Config.preset("paper").with_overrides({"data.data_root": "/data/my faces", "model.dmn.ngf": 32}),
    Config.preset("cpu").with_overrides({"data.dataset": "celebamask-hq", "data.data_root": "faces"}),
    Config.preset("paper").with_overrides({"data.data_root": ""}),
], ids=["smoke", "cpu", "smoke-with-overrides", "paper-with-a-spaced-root", "cpu-on-celebamask", "paper-without-root"])
def test_run_options_give_the_same_config_back_through_the_command_line(cfg):
    assert _config_of(stages.run_options(cfg)) == cfg


def test_run_options_name_the_nearest_preset_and_only_what_differs():
    cfg = Config.preset("smoke").with_overrides({"train.vae_steps": 10})
    assert stages.run_options(cfg) == "--preset smoke --set train.vae_steps=10"
    assert stages.run_options(None) == ""


def test_a_missing_stage_of_a_configured_run_says_how_to_train_it_with_that_config(tmp_path):
    cfg = Config.preset("smoke").with_overrides({"train.vae_steps": 10})
    with pytest.raises(StageMissing) as missing:
        Run(tmp_path, cfg=cfg).require("vae")
    message = str(missing.value)
    options = "--preset smoke --set train.vae_steps=10"
    assert f"`python -m maskgan train vae --run-dir {tmp_path} {options}`" in message
    assert f"`python -m maskgan pipeline --only 01 --run-dir {tmp_path} {options}`" in message


def test_a_hint_names_a_relative_run_folder_by_its_absolute_path(tmp_path, monkeypatch):
    """A notebook kernel runs in notebooks/; its hint is followed in a terminal elsewhere."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "lab").mkdir(parents=True)
    assert get_stage("vae").command("runs/lab") == f"python -m maskgan train vae --run-dir {tmp_path / 'runs' / 'lab'}"


def test_ebst_without_a_maskvae_says_how_to_train_it_at_the_run_preset(tmp_path):
    from maskgan.train import train
    options = "--preset smoke --set cadence.sample_every=1000 --set train.dmn_steps=2"  # smoke() of this file
    with pytest.raises(StageMissing, match=rf"`python -m maskgan train vae --run-dir \S+ {options}`; then train EBST"):
        train("ebst", smoke(), tmp_path, progress=False)


def test_the_apps_check_says_how_to_train_the_missing_maskvae_at_the_runs_preset(tmp_path):
    from maskgan.train import train
    from maskgan.widgets import run_status
    train("dmn", smoke(), tmp_path, progress=False)
    ready, message = run_status(tmp_path)
    options = "--preset smoke --set cadence.sample_every=1000 --set train.dmn_steps=2"  # smoke() of this file
    assert ready and f"`python -m maskgan train vae --run-dir {tmp_path} {options}`" in message


def test_the_run_reads_steps_from_its_checkpoints(tmp_path):
    from maskgan.train import train
    train("dmn", smoke(), tmp_path, progress=False)
    run = Run(tmp_path)
    assert run.step("dmn") == 2 and run.step("ebst") == 0
    assert run.trained() == ["dmn"] and run.editing_stage() == "dmn"
    assert run.is_complete("dmn", smoke()) and not run.is_complete("dmn", smoke().with_overrides({"train.dmn_steps": 3}))
    net, cfg, ckpt = run.generator("dmn")
    assert not net.training and cfg == smoke() and ckpt.step == 2


def test_a_toy_stage_is_picked_up_by_the_cli_the_run_and_the_evaluation(toy, tmp_path, capsys):
    # the command line offers it and trains it
    train_cmd = next(a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                     if a.dest == "stage")
    assert "toy" in train_cmd.choices
    with pytest.raises(StageMissing, match=r"toy L1.*python -m maskgan train toy"):
        Run(tmp_path).require("toy")
    assert main(["train", "toy", "--preset", "smoke", "--run-dir", str(tmp_path), "--device", "cpu",
                 "--set", "cadence.sample_every=1000"]) == 0
    run = Run(tmp_path)
    assert run.step("toy") == 2 and [r["step"] for r in run.read_log("toy")] == [1, 2]
    # the evaluation measures every generator stage of the registry
    from maskgan.evaluation import evaluate_run, format_eval_table
    torch.set_num_threads(1)
    result = evaluate_run(tmp_path, n=2, n_edits=0, cfg=smoke(), record=False)
    assert list(result.stages) == ["toy"] and "toy (toy L1)" in format_eval_table(result)


def test_registering_a_stage_twice_or_with_unknown_needs_is_refused(toy):
    with pytest.raises(ConfigError, match="already registered"):
        stages.register(toy)
    with pytest.raises(ConfigError, match="unregistered stage"):
        stages.register(Stage(name="toy2", title="t", role="baseline", trainer=ToyTrainer, steps=lambda c: 1,
                              batch_size=lambda c: 1, nets=("dmn",), identity=(), needs=("nothing",)))
