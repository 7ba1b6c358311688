"""Writing and checking the kit's shipped models (``pretrained/<name>/``, see :mod:`maskgan.pretrained`).

:func:`export_pretrained` (a developer's step: ``python -m maskgan export-pretrained``) copies the
networks a user needs out of a trained run -- half precision, no optimizer state -- and writes
``pretrained.json``: per stage its steps, schedule, training time, thread count, machine and the
sha256 of every file; the evaluation of the shipped models (the same :func:`evaluate_run` as for any
run, read-only); and :func:`batch_check`'s values, which the test suite recomputes
(``tests/test_pretrained.py``) to show that the files give the recorded numbers.
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ..checkpoint import LATEST, MANIFEST, _fsync_dir, file_record, save_weights
from ..config import Config
from ..data import build_dataset
from ..errors import CheckpointError, ConfigError, MaskGANError, StageMissing
from ..io import atomic_write_json, read_json
from ..labels import one_hot
from ..metrics import SegmentationMeter, psnr
from ..nn import build_net, logits_to_labels
from ..pretrained import DEFAULT_PRETRAINED, PRETRAINED_ROOT, RECORD, pretrained_label, read_record
from ..run import Run
from ..stages import STAGES, generator_stages, get_stage
from .run import evaluate_run

__all__ = ["CHECK_TOLERANCE", "export_pretrained", "batch_check", "compare_check", "shipped_evaluation"]

#: How far a recomputed :func:`batch_check` value may be from the recorded one: float32 sums in
#: another order (thread count, BLAS) move PSNR by far less than 0.01 dB and flip a handful of pixels.
CHECK_TOLERANCE = {"psnr": 0.02, "accuracy": 0.002}
CHECK_FACES = 8


def _machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


@torch.no_grad()
def batch_check(run: Run, n: int = CHECK_FACES) -> dict[str, float]:
    """Small-batch numbers of a model set, cheap enough for the test suite: each generator's
    reconstruction PSNR and the parser's pixel accuracy on its renders, over the first ``n`` test
    faces; the MaskVAE's reconstruction pixel accuracy and the parser's on the real images."""
    torch.manual_seed(0)
    stages = [s for s in STAGES if run.has(s)]
    if not stages:
        raise CheckpointError(f"{run.path} holds no checkpoint to check")
    cfg = run.config(stages[0])
    test = build_dataset(cfg.data, "test")
    items = [test[i] for i in range(min(n, len(test)))]
    image = torch.stack([it["image"] for it in items])
    label = torch.stack([it["label"] for it in items])
    mask = one_hot(label)
    out: dict[str, float] = {}
    parser = run.load_net("parser")[0] if run.has("parser") else None

    def accuracy(pred) -> float:
        meter = SegmentationMeter()
        meter.update(pred, label)
        return float(meter.compute()["pixel_accuracy"])

    if parser is not None:
        out["parser/real_accuracy"] = accuracy(parser.parse(image))
    if run.has("vae"):
        out["vae/recon_accuracy"] = accuracy(logits_to_labels(run.maskvae()(mask)[0]))
    for stage in stages:
        if STAGES[stage].generator is None:
            continue
        g = run.generator(stage)[0]
        fake = g.render(mask, g.style(image, mask)).float()
        out[f"{stage}/recon_psnr"] = float(psnr(fake, image).mean())
        if parser is not None:
            out[f"{stage}/parsed_accuracy"] = accuracy(parser.parse(fake))
    return out


def compare_check(recorded: dict[str, float], measured: dict[str, float]) -> list[str]:
    """The values that differ by more than :data:`CHECK_TOLERANCE` (empty: they agree)."""
    problems = []
    for key in sorted(set(recorded) | set(measured)):
        if key not in recorded or key not in measured:
            problems.append(f"{key}: recorded {recorded.get(key)}, measured {measured.get(key)}")
            continue
        tol = CHECK_TOLERANCE["psnr" if key.endswith("psnr") else "accuracy"]
        if abs(recorded[key] - measured[key]) > tol:
            problems.append(f"{key}: recorded {recorded[key]:.4f}, measured {measured[key]:.4f} (tolerance {tol})")
    return problems


def _summary(run: Run, stage: str) -> dict:
    path = run.stage_dir(stage) / "summary.json"
    if not path.exists():
        return {}
    s = read_json(path)
    return {k: s[k] for k in ("seconds", "seconds_per_step", "threads", "world_size", "steps") if k in s}


#: A test hook: ``MASKGAN_EXPORT_CRASH=<point>`` ends the process at that named point of
#: :func:`export_pretrained` (``os._exit``, as a kill would), so the tests can show that a killed
#: export leaves no model set behind. The points, in order:
CRASH_POINTS = ("stages", "record", "evaluation", "publish")
CRASH_ENV = "MASKGAN_EXPORT_CRASH"
_CRASH_EXIT = 75


def _crash_point(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        print(f"{CRASH_ENV}={point}: ending the process here, as a kill would", flush=True)
        os._exit(_CRASH_EXIT)


def _remove_leftovers(root: Path, name: str) -> None:
    """Folders that killed exports of ``name`` left in ``root`` (their process is gone)."""
    from ..checkpoint import _alive
    for p in root.glob(f".{name}.export-*"):
        pid = p.name.rsplit("-", 2)[-2] if p.name.count("-") >= 2 else ""
        if p.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(p, ignore_errors=True)


def _require_parser(src: Run, stages: list[str]) -> None:
    """The shipped record holds an evaluation, which needs the run's finished face parser: refuse
    before anything is written, naming the *source* run (not the shipped folder) to train it in."""
    from .run import evaluation_config
    cfg = evaluation_config(src)
    ckpt = src.latest("parser")
    if ckpt is not None and "parser" not in stages:
        raise ConfigError(f"stages {stages} leave out 'parser', which the shipped set needs: its recorded "
                          "evaluation reads the models with it; nothing was exported")
    if ckpt is None or ckpt.step < cfg.parser.steps:
        have = f"its parser stops at step {ckpt.step}" if ckpt else "it has no face parser"
        raise StageMissing(f"export-pretrained records an evaluation of the models, which reads them with the run's "
                           f"face parser ({cfg.parser.steps} steps), but {have} ({src.path}). Train it in that run "
                           f"first: {get_stage('parser').how_to_train(src.path)}; nothing was exported")


def export_pretrained(run_dir: Path | str | Run, name: str, *, title: str, recipe: dict, stages=None,
                      history: dict | None = None, root: Path | str | None = None, overwrite: bool = False,
                      n: int | None = None, n_edits: int | None = None, progress: bool = True) -> dict:
    """Copy a trained run's models into ``<root>/<name>/`` (default root: the repository's
    ``pretrained/``) in float16 and write ``pretrained.json`` (see the module docstring).

    ``recipe``: how the models were trained (at least ``preset`` and the commands); ``history``:
    per stage, notes on training sessions the run's own summary does not cover (e.g. steps trained by
    an earlier version of the kit). The evaluation runs on the exported half-precision files.

    The set appears whole or not at all: everything, the evaluation included, is written into a
    hidden folder ``<root>/.<name>.export-<pid>-<n>`` that is renamed to ``<name>`` at the end (an
    existing set, with ``overwrite``, is replaced only then). A failed or killed export leaves no
    ``<name>``; its leftover folder is removed by the next export of that name.
    """
    src = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    root = Path(root) if root is not None else PRETRAINED_ROOT
    out = root / name
    if "preset" not in recipe:
        raise ConfigError("recipe must name the preset the models were trained with (recipe['preset'])")
    if not name or name.startswith(".") or Path(name).name != name:
        raise ConfigError(f"--name {name!r} must be a plain folder name (e.g. synthfaces64)")
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    stages = [s for s in (stages or STAGES) if src.has(s)]
    if not any(get_stage(s).generator for s in stages):
        raise CheckpointError(f"{src.path} has no generator stage to ship")
    _require_parser(src, stages)
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.export-{os.getpid()}-", dir=root))
    try:
        record = _write_set(src, tmp, name, title, recipe, stages, history)
        _crash_point("record")
        shipped = Run(tmp)
        if progress:
            print(f"evaluating the exported float16 models in {tmp}")
        evaluation = evaluate_run(shipped, n, n_edits=n_edits, train_parser=False, record=False, progress=progress,
                                  device="cpu")
        evaluation.parser.checkpoint = str(Path(evaluation.parser.checkpoint).resolve().relative_to(tmp.resolve()))
        _crash_point("evaluation")
        record["evaluation"] = evaluation.to_dict()
        record["check"] = {"faces": CHECK_FACES, "threads": torch.get_num_threads(), "tolerance": CHECK_TOLERANCE,
                           "values": batch_check(shipped)}
        atomic_write_json(tmp / RECORD, record)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        _crash_point("publish")
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


def _write_set(src: Run, out: Path, name: str, title: str, recipe: dict, stages: list[str],
               history: dict | None) -> dict:
    """The stages of ``src`` in float16 and a first ``pretrained.json`` (no evaluation yet) in ``out``."""
    record: dict = {"name": name, "title": title, "recipe": recipe, "dtype": "float16",
                    "exported": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": _machine(), "stages": {}}
    sizes = set()
    for stage in stages:
        ckpt = src.require(stage)
        cfg: Config = ckpt.config()
        sizes.add((cfg.data.dataset, cfg.data.size))
        folder = out / stage / "checkpoints" / ckpt.path.name
        files = {}
        for net in get_stage(stage).shipped_nets():
            module = ckpt.load(net, build_net(net, cfg))
            save_weights(module, folder / f"{net}.safetensors", dtype=torch.float16)
        shutil.copyfile(ckpt.file("config.json"), folder / "config.json")
        manifest = {p.name: file_record(p) for p in sorted(folder.iterdir())}
        atomic_write_json(folder / MANIFEST, {"step": ckpt.step, "files": manifest})
        atomic_write_json(out / stage / "checkpoints" / LATEST, {"step": ckpt.step, "path": folder.name})
        for p in sorted(folder.iterdir()):
            files[str(p.relative_to(out))] = file_record(p)
        entry = {"checkpoint": str(folder.relative_to(out)), "step": ckpt.step, "config": ckpt.record()["config"],
                 "schedule": ckpt.record().get("schedule"), "last_session": _summary(src, stage), "files": files}
        if get_stage(stage).generator is not None:
            entry["training"] = src.training_record(stage)
        if history and stage in history:
            entry["history"] = history[stage]
        record["stages"][stage] = entry
    _crash_point("stages")
    if len(sizes) != 1:
        raise ConfigError(f"the stages of {src.path} were trained on different data/sizes: {sorted(sizes)}")
    record["dataset"], record["image_size"] = sizes.pop()
    record["total_bytes"] = sum(f["size"] for e in record["stages"].values() for f in e["files"].values())
    atomic_write_json(out / RECORD, record)  # the stages are readable from here on (the evaluation reads them)
    return record


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished set into place; an older set is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.export-{os.getpid()}-replaced")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def shipped_evaluation(name: str = DEFAULT_PRETRAINED):
    """The recorded :class:`~maskgan.evaluation.records.Evaluation` of a shipped model set (None, with a
    printed line, when the kit has none)."""
    from .records import Evaluation
    try:
        record = read_record(name)
    except MaskGANError as e:
        print(f"no shipped models: {e}")
        return None
    print(f"{pretrained_label(name)}; evaluation recorded {record['exported']}")
    return Evaluation.from_dict(record["evaluation"])


def shipped_figures(name: str = DEFAULT_PRETRAINED, dest: Path | str | None = None) -> list[Path]:
    """The README's figures of a shipped model set, saved as ``<dest>/pretrained_<figure>.png`` (default
    ``dest``: the repository's ``figures/``; a developer's step, ``python -m maskgan publish-figures
    --pretrained``): the evaluation's mask-fidelity, edit-PSNR and edit-example figures, the
    stroke-edit examples, and stage I's edits re-rendered and composited. Nothing is written into the shipped folder."""
    from ..pretrained import pretrained_run
    from ..viz import save_figure
    from .report import eval_figures
    from .strokes import stroke_examples_figure
    run = pretrained_run(name)
    dest = Path(dest) if dest is not None else PRETRAINED_ROOT.parent / "figures"
    figs = eval_figures(run, read_record(name)["evaluation"], save=False)
    cfg = run.config("dmn")
    gens = {s: run.generator(s)[0] for s in generator_stages() if run.has(s)}
    figs["06_stroke_examples"] = stroke_examples_figure(gens, build_dataset(cfg.data, "test"),
                                                        title="Shipped models: user-like stroke edits")
    from .blends import blend_examples_figure
    figs["06_composite_examples"] = blend_examples_figure(
        gens["dmn"], cfg.data.size, index=3, title="Shipped stage I: the paper's re-render, or composited into the "
                                                   "original (SynthFaces test face 3)")
    written = []
    for key, fig in figs.items():
        path = dest / f"pretrained_{key.removeprefix('06_')}.png"
        save_figure(fig, path)
        written.append(path)
    return written


def record_evaluation(name: str, evaluation) -> Path:
    """Replace the ``evaluation`` section of a shipped set's ``pretrained.json`` with ``evaluation``
    (an :class:`~maskgan.evaluation.records.Evaluation` of the shipped files), atomically; the
    weights and their sha256 are not touched. Returns the record's path."""
    from ..pretrained import RECORD, pretrained_dir, read_record
    record = read_record(name)
    data = evaluation.to_dict()
    folder = pretrained_dir(name).resolve()
    checkpoint = Path(data["parser"]["checkpoint"])
    if checkpoint.is_absolute() and checkpoint.resolve().is_relative_to(folder):  # no machine paths in the record
        data["parser"]["checkpoint"] = checkpoint.resolve().relative_to(folder).as_posix()
    record["evaluation"] = data
    path = pretrained_dir(name) / RECORD
    atomic_write_json(path, record)
    return path
