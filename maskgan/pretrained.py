"""The weights shipped with the kit: trained SynthFaces models for users who have not trained a run.

``pretrained/<name>/`` (at the repository root) is a run directory like any other -- one folder
per stage with ``checkpoints/step_N/<net>.safetensors``, ``config.json`` and ``manifest.json`` --
except that it holds only the networks needed to *use* the models (no optimizer state, and half
precision: the weights are cast back to float32 when loaded). Next to the stages,
``pretrained.json`` records for every stage its steps, LR schedule, training time and machine,
the sha256 of every file, the evaluation of the shipped models and a small-batch check
(see :mod:`maskgan.evaluation.shipped`, which writes it)::

    from maskgan.pretrained import pretrained_run
    run = pretrained_run()              # verified: every file against its recorded sha256
    dmn, cfg, ckpt = run.generator("ebst")

The app, notebooks 04-06 and ``python -m maskgan evaluate --pretrained`` use it when the user has
no trained run; everything that shows these models labels them "pretrained".
"""
from __future__ import annotations

from pathlib import Path

from .checkpoint import MANIFEST, check_file
from .errors import CheckpointError, StageMissing
from .io import read_json
from .run import Run
from .stages import STAGES

__all__ = ["PRETRAINED_ROOT", "DEFAULT_PRETRAINED", "RECORD", "pretrained_dir", "read_record", "verify_pretrained",
           "pretrained_run", "is_pretrained", "pretrained_label"]

#: Where the shipped models live (the repository's ``pretrained/`` folder).
PRETRAINED_ROOT = Path(__file__).resolve().parents[1] / "pretrained"
#: The model set used when none is named.
DEFAULT_PRETRAINED = "synthfaces64"
#: The record written next to the stages.
RECORD = "pretrained.json"
#: The sections a finished export writes (an older, interrupted export may have left a record without them).
COMPLETE = ("evaluation", "check")


def pretrained_dir(name: str = DEFAULT_PRETRAINED) -> Path:
    """The folder of a shipped model set (an error naming what exists when it is not there)."""
    path = PRETRAINED_ROOT / name
    if not (path / RECORD).exists():
        have = sorted(p.name for p in PRETRAINED_ROOT.iterdir()  # not the hidden folders of unfinished exports
                      if (p / RECORD).exists() and not p.name.startswith(".")) if PRETRAINED_ROOT.is_dir() else []
        raise StageMissing(f"no shipped model set {name!r}: {path / RECORD} does not exist "
                           f"(shipped sets: {', '.join(have) or 'none'} in {PRETRAINED_ROOT})")
    return path


def read_record(name: str = DEFAULT_PRETRAINED) -> dict:
    """``pretrained.json`` of a shipped model set."""
    path = pretrained_dir(name) / RECORD
    try:
        record = read_json(path)
    except ValueError as e:
        raise CheckpointError(f"{path} is damaged: {e}") from None
    if not isinstance(record, dict) or "stages" not in record:
        raise CheckpointError(f"{path} is not a pretrained record (expected a 'stages' section)")
    missing = [k for k in COMPLETE if k not in record]
    if missing:
        raise CheckpointError(f"{path} has no {' or '.join(repr(k) for k in missing)} section: the export that wrote "
                              f"{path.parent} did not finish, so these are not the kit's shipped models. Export them "
                              f"again (`python -m maskgan export-pretrained --run-dir RUN --name {name} ... "
                              f"--overwrite`, from a run with a trained face parser) or delete {path.parent}")
    return record


def verify_pretrained(name: str = DEFAULT_PRETRAINED) -> dict:
    """Check every shipped file against the sha256 and size in ``pretrained.json`` and each
    checkpoint's config against the recorded one; returns the record. Raises
    :class:`CheckpointError` naming the file and both digests."""
    root = pretrained_dir(name)
    record = read_record(name)
    for stage, entry in record["stages"].items():
        if stage not in STAGES:
            raise CheckpointError(f"{root / RECORD} lists an unknown stage {stage!r} (stages: {', '.join(STAGES)})")
        for rel, expected in entry["files"].items():
            check_file(root / rel, expected, str(root / RECORD))
        ckpt_dir = root / entry["checkpoint"]
        if read_json(ckpt_dir / "config.json")["config"] != entry["config"]:
            raise CheckpointError(f"{ckpt_dir / 'config.json'} differs from the config recorded for {stage} "
                                  f"in {root / RECORD}")
        if not (ckpt_dir / MANIFEST).exists():
            raise CheckpointError(f"{ckpt_dir / MANIFEST} is missing")
    return record


_VERIFIED: set[str] = set()


def pretrained_run(name: str = DEFAULT_PRETRAINED, verify: bool = True) -> Run:
    """The shipped model set as a :class:`~maskgan.run.Run` (read it, never train into it)."""
    root = pretrained_dir(name)
    if verify and name not in _VERIFIED:
        verify_pretrained(name)
        _VERIFIED.add(name)
    return Run(root)


def is_pretrained(run: Run | Path | str) -> bool:
    """Whether a run directory is one of the shipped model sets."""
    path = Path(run.path if isinstance(run, Run) else run).resolve()
    return (path / RECORD).exists() and path.parent == PRETRAINED_ROOT.resolve()


def pretrained_label(name: str = DEFAULT_PRETRAINED) -> str:
    """One line that says what the shipped models are (shown wherever they are used)."""
    rec = read_record(name)
    return (f"pretrained: the kit's shipped models, {rec.get('title', name)} (pretrained/{name}), "
            f"not a run of yours")
