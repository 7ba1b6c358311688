"""The models shipped with the kit (pretrained/, maskgan.pretrained) and how they are written
(maskgan.evaluation.shipped): they load, match their recorded sha256 and config, and give the
numbers recorded with them on a small test batch; a changed file is refused by name."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from maskgan import pretrained as pt
from maskgan.__main__ import main
from maskgan.config import Config
from maskgan.errors import CheckpointError, StageMissing
from maskgan.evaluation.shipped import CHECK_TOLERANCE, batch_check, compare_check, export_pretrained
from maskgan.notebook import PRETRAINED_MARK, use_pretrained
from maskgan.run import Run
from maskgan.stages import STAGES, generator_stages
from maskgan.train import train

SHIPPED = pt.PRETRAINED_ROOT / pt.DEFAULT_PRETRAINED
MAX_BYTES = 30 * 2**20  # the budget for the shipped weights


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


# --- the shipped set ------------------------------------------------------------------------

def test_the_shipped_models_match_their_record():
    record = pt.verify_pretrained()  # every file's sha256 and size, every checkpoint's config
    assert set(record["stages"]) == set(STAGES), "every stage of the kit is shipped"
    assert record["total_bytes"] <= MAX_BYTES
    on_disk = sum(p.stat().st_size for p in SHIPPED.rglob("*.safetensors"))
    assert on_disk <= MAX_BYTES
    for entry in record["stages"].values():
        assert entry["step"] > 0 and entry["config"]["data"]["size"] == record["image_size"]
        for rel in entry["files"]:
            if rel.endswith(".safetensors"):
                with safe_open(str(SHIPPED / rel), "pt") as f:
                    dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
                assert dtypes <= {"F16", "I64"}, f"{rel} holds {dtypes}"


def test_the_shipped_models_give_their_recorded_numbers_on_a_small_batch():
    record = pt.read_record()
    measured = batch_check(pt.pretrained_run())
    assert set(measured) == set(record["check"]["values"])
    assert record["check"]["tolerance"] == CHECK_TOLERANCE
    assert compare_check(record["check"]["values"], measured) == []


def test_the_recorded_evaluation_covers_every_shipped_generator_and_reads_as_a_table(capsys):
    assert main(["evaluate", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "pretrained" in out and "recorded when the models were exported" in out
    record = pt.read_record()
    assert set(record["evaluation"]["stages"]) == set(generator_stages())
    for stage in generator_stages():
        assert f"{stage} " in out  # the per-stage step lines
    assert "user-like stroke edits" in out


def test_a_changed_shipped_file_is_refused_by_name(tmp_path, monkeypatch):
    copy = tmp_path / pt.DEFAULT_PRETRAINED
    shutil.copytree(SHIPPED, copy)
    monkeypatch.setattr(pt, "PRETRAINED_ROOT", tmp_path)
    pt._VERIFIED.clear()
    weights = next(copy.rglob("dmn.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"dmn\.safetensors is damaged or was changed: sha256"):
        pt.verify_pretrained()
    with pytest.raises(StageMissing, match="no shipped model set 'nope'"):
        pt.pretrained_dir("nope")


# --- writing a set (on a smoke run trained here) ----------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("smoke_run")
    cfg = Config.preset("smoke").with_overrides({"cadence.sample_every": 1000, "train.ebst_steps": 2})
    for stage in STAGES:
        train(stage, cfg, run_dir, progress=False)
    return run_dir, cfg


@pytest.fixture(scope="module")
def exported(smoke_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    record = export_pretrained(smoke_run[0], "tiny", title="tiny smoke models", recipe={"preset": "smoke"},
                               history={"dmn": ["a note"]}, root=root, n=2, n_edits=1, progress=False)
    return root, record


def test_export_writes_half_precision_copies_that_render_like_the_originals(smoke_run, exported):
    root, record = exported
    src, out = Run(smoke_run[0]), Run(root / "tiny")
    assert record["stages"]["dmn"]["history"] == ["a note"] and record["dtype"] == "float16"
    assert set(record["stages"]["ebst"]["files"]) >= {f"ebst/checkpoints/step_0000002/{n}.safetensors"
                                                     for n in ("dmn", "blender")}
    assert not any(p.name == "state.pt" for p in (root / "tiny").rglob("*")), "no optimizer state is shipped"
    torch.manual_seed(0)
    image, mask = torch.rand(2, 3, 32, 32) * 2 - 1, torch.nn.functional.one_hot(
        torch.randint(0, 19, (2, 32, 32)), 19).permute(0, 3, 1, 2).float()
    a, b = src.generator("dmn")[0], out.generator("dmn")[0]
    fa, fb = a.render(mask, a.style(image, mask)), b.render(mask, b.style(image, mask))
    assert 0 < (fa - fb).abs().max() < 0.05  # float16 weights: close to, not equal to, the float32 ones
    assert compare_check(record["check"]["values"], batch_check(out)) == []


def test_export_refuses_to_overwrite_and_needs_a_preset(smoke_run, exported):
    root, _ = exported
    with pytest.raises(CheckpointError, match="exists; pass overwrite=True"):
        export_pretrained(smoke_run[0], "tiny", title="t", recipe={"preset": "smoke"}, root=root, progress=False)
    with pytest.raises(Exception, match="preset"):
        export_pretrained(smoke_run[0], "other", title="t", recipe={}, root=root, progress=False)


# --- an export appears whole or not at all (issue 22, item 1) ------------------------------------------

_EXPORT = """import sys
from maskgan.evaluation.shipped import export_pretrained
export_pretrained(sys.argv[1], "killed", title="t", recipe={"preset": "smoke"}, root=sys.argv[2], n=2, n_edits=1,
                  progress=False)
"""


@pytest.mark.parametrize("point", ["record", "evaluation"])
def test_an_export_killed_before_its_evaluation_is_recorded_leaves_no_model_set(smoke_run, tmp_path, monkeypatch,
                                                                               point):
    import os
    import subprocess
    import sys
    from maskgan.widgets.__main__ import main as widgets_main
    CRASH_ENV = "MASKGAN_EXPORT_CRASH"  # maskgan.evaluation.shipped.CRASH_ENV: end the export at a named point
    root = tmp_path / "pretrained"
    env = {**os.environ, CRASH_ENV: point, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _EXPORT, str(smoke_run[0]), str(root)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 75, done.stdout + done.stderr  # ended at the named point, as a kill would
    assert f"{CRASH_ENV}={point}" in done.stdout
    assert not (root / "killed").exists(), "nothing half-written is published"
    monkeypatch.setattr(pt, "PRETRAINED_ROOT", root)
    with pytest.raises(StageMissing, match="no shipped model set 'killed'.*shipped sets: none"):
        pt.pretrained_dir("killed")
    assert widgets_main(["check", str(root / "killed")]) == 1
    record = export_pretrained(smoke_run[0], "killed", title="t", recipe={"preset": "smoke"}, root=root, n=2,
                               n_edits=1, progress=False)
    assert "evaluation" in record and [p.name for p in root.iterdir()] == ["killed"], "the leftover is removed"
    assert pt.read_record("killed")["evaluation"] == record["evaluation"]


def test_an_export_of_a_run_without_a_face_parser_is_refused_before_anything_is_written(smoke_run, tmp_path):
    src = tmp_path / "no_parser"
    shutil.copytree(smoke_run[0], src, ignore=lambda d, names: ["parser"] if Path(d) == smoke_run[0] else [])
    root = tmp_path / "pretrained"
    with pytest.raises(StageMissing) as e:
        export_pretrained(src, "tiny", title="t", recipe={"preset": "smoke"}, root=root, n=2, n_edits=1,
                          progress=False)
    message = str(e.value)
    assert f"--run-dir {src}" in message and "nothing was exported" in message
    assert str(root) not in message, "never advise training into the shipped folder"
    assert not root.exists() or not any(root.iterdir())


def test_a_model_set_an_older_export_left_without_its_evaluation_is_not_trusted(exported, tmp_path, monkeypatch,
                                                                              capsys):
    from maskgan.widgets.__main__ import main as widgets_main
    half = tmp_path / "half"
    shutil.copytree(exported[0] / "tiny", half)
    record = json.loads((half / pt.RECORD).read_text())
    del record["evaluation"], record["check"]
    (half / pt.RECORD).write_text(json.dumps(record))
    monkeypatch.setattr(pt, "PRETRAINED_ROOT", tmp_path)
    pt._VERIFIED.clear()
    assert main(["evaluate", "--pretrained", "half"]) == 2  # before: KeyError: 'evaluation'
    err = capsys.readouterr().err
    assert "has no 'evaluation' or 'check' section: the export that wrote" in err and "did not finish" in err
    assert widgets_main(["check", str(half)]) == 1  # before: 0, "the kit's shipped models"
    assert "did not finish" in capsys.readouterr().err


def test_compare_check_names_what_moved():
    assert compare_check({"dmn/recon_psnr": 20.0}, {"dmn/recon_psnr": 20.01}) == []
    problems = compare_check({"dmn/recon_psnr": 20.0, "vae/recon_accuracy": 0.9},
                             {"dmn/recon_psnr": 20.5, "vae/recon_accuracy": 0.9})
    assert len(problems) == 1 and problems[0].startswith("dmn/recon_psnr: recorded 20.0000, measured 20.5000")


# --- falling back on the shipped models ---------------------------------------------------------

def test_a_notebook_run_takes_the_shipped_stages_it_lacks_when_the_config_matches(tmp_path, capsys):
    cfg = Config.preset(pt.read_record()["recipe"]["preset"])
    run = Run(tmp_path / "run")
    assert use_pretrained(run, cfg, ["vae", "dmn"]) == ["vae", "dmn"]
    assert "is the kit's shipped one" in capsys.readouterr().out
    assert json.loads((run.stage_dir("dmn") / PRETRAINED_MARK).read_text())["from"] == "pretrained/synthfaces64"
    assert run.generator("dmn")[0] is not None and use_pretrained(run, cfg, ["dmn"]) == []  # has it now
    other = Run(tmp_path / "other")
    assert use_pretrained(other, Config.preset("smoke"), ["dmn"]) == []  # other widths: not used, said
    assert "trained with another config" in capsys.readouterr().out and not other.has("dmn")


def test_the_app_serves_the_shipped_models_while_the_default_run_is_empty(tmp_path, monkeypatch):
    from maskgan.widgets import faces
    monkeypatch.setattr(faces, "_REPO_ROOT", tmp_path)  # runs/demo of an untouched checkout: absent
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(faces.RUN_DIR_ENV, raising=False)
    assert faces.resolve_run_dir() == SHIPPED
    assert faces.resolve_run_dir("pretrained") == SHIPPED
    ready, message = faces.run_status()
    assert ready and "pretrained" in message and "not a run of yours" in message
    named = tmp_path / "mine"
    named.mkdir()
    assert faces.resolve_run_dir(named) == named  # a run the user names is never replaced
    ready, message = faces.run_status(named)
    assert not ready and "make app RUN_DIR=pretrained" in message


def _make_dry_run(*args: str, path: str | None = None) -> str:
    """The commands `make ARGS` would run in the repository (make -n: nothing runs)."""
    import os
    import subprocess
    env = {**os.environ, **({"PATH": path} if path else {})}
    done = subprocess.run(["make", "-n", *args], cwd=pt.PRETRAINED_ROOT.parent, env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_make_app_run_dir_pretrained_serves_the_default_shipped_set(monkeypatch, capsys):
    """The README's `make app RUN_DIR=pretrained`: its check passes and the page loads the shipped set."""
    import re
    import shlex
    from maskgan.widgets import faces
    from maskgan.widgets.__main__ import main as widgets_main
    commands = _make_dry_run("app", "RUN_DIR=pretrained")
    check = next(line for line in commands.splitlines() if "maskgan.widgets check" in line)
    monkeypatch.chdir(pt.PRETRAINED_ROOT.parent)
    assert widgets_main(shlex.split(check.split("maskgan.widgets", 1)[1])) == 0
    assert str(SHIPPED) in capsys.readouterr().out
    served = re.search(r'MASKGAN_RUN_DIR="([^"]+)"', commands).group(1)  # what the Voila kernel reads
    assert faces.resolve_run_dir(served) == SHIPPED


def test_a_failing_shipped_set_does_not_recommend_itself(tmp_path, monkeypatch):
    from maskgan.widgets import faces
    broken = tmp_path / "pretrained" / "synthfaces64"
    shutil.copytree(SHIPPED, broken)
    for stage in ("dmn", "ebst"):
        (broken / stage / "checkpoints").rename(broken / stage / "moved")
    monkeypatch.setattr(pt, "PRETRAINED_ROOT", tmp_path / "pretrained")
    ready, message = faces.run_status(broken)
    assert not ready and "make app RUN_DIR=pretrained" not in message and "do not load" in message


def test_make_lab_adds_allow_root_only_as_root(tmp_path):
    """Jupyter refuses root without --allow-root; a container usually runs as root."""
    import os
    for uid, expected in (("0", True), ("1000", False)):
        fake = tmp_path / uid
        fake.mkdir()
        (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        (fake / "id").chmod(0o755)
        lab = next(line for line in _make_dry_run("lab", path=f"{fake}:{os.environ['PATH']}").splitlines()
                   if "jupyter lab" in line)
        assert ("--allow-root" in lab) is expected, (uid, lab)
