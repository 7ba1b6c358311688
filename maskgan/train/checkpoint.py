"""Checkpoints: weights as safetensors + the config as JSON, plus a resumable training state.

A checkpoint is a folder ``<run_dir>/checkpoints/step_000123/`` holding

- ``<net>.safetensors`` for each network (plain tensors: safe to share, loads anywhere),
- ``config.json`` (the full :class:`maskgan.config.Config` and which stage wrote it),
- ``state.pt``: optimizers, schedulers, grad scalers, step, the RNG states of python, numpy and
  torch (and CUDA), and the position in the data order. Written with ``torch.save`` and read
  back with ``torch.load(..., weights_only=True)``, so a file carrying a pickled object is refused.

The folder is written under a temporary name and renamed into place, then ``latest.json`` is
replaced atomically: a run killed at any moment leaves the last good checkpoint intact.
"""
from __future__ import annotations

import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from ..io import atomic_write_json, read_json

__all__ = [
    "CheckpointError", "save_checkpoint", "latest_checkpoint", "load_state", "load_weights",
    "save_weights", "rng_state", "set_rng_state",
]

LATEST = "latest.json"




def rng_state() -> dict:
    """RNG states of python, numpy (legacy global) and torch (CPU and CUDA) as plain tensors/lists."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP / torch.compile wrappers, whose state-dict keys are the plain ones."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


def save_weights(module: torch.nn.Module, path: Path | str) -> Path:
    """Write a module's state dict as safetensors, atomically."""
    from safetensors.torch import save
    tensors = {k: v.detach().cpu().contiguous() for k, v in _unwrap(module).state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(save(tensors))
    os.replace(tmp, path)
    return path


def load_weights(module: torch.nn.Module, path: Path | str) -> torch.nn.Module:
    """Load safetensors weights into a module (strict), with errors that name the file."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"weights file {path} does not exist")
    tensors = load_file(str(path))
    target = _unwrap(module)
    device = next(iter(target.state_dict().values()), torch.empty(0)).device
    try:
        missing, unexpected = target.load_state_dict({k: v.to(device) for k, v in tensors.items()}, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{path} does not fit {type(target).__name__} (was it written with another "
                              f"configuration?): {str(e).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit {type(target).__name__}: missing keys {missing[:5]}, "
                              f"unexpected keys {unexpected[:5]} (was it written with another configuration?)")
    return module


def save_checkpoint(run_dir: Path | str, step: int, nets: dict[str, torch.nn.Module], state: dict,
                    config: dict, keep: int = 2) -> Path:
    """Write ``checkpoints/step_<step>/`` atomically and point ``latest.json`` at it.

    ``state`` holds everything else needed to resume (optimizer/scheduler/scaler state dicts, data
    position ...); RNG states are added here. Only the newest ``keep`` checkpoints are kept.
    """
    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_step_{step:07d}_", dir=ckpt_root))
    try:
        for name, net in nets.items():
            save_weights(net, tmp / f"{name}.safetensors")
        atomic_write_json(tmp / "config.json", config)
        torch.save({**state, "step": step, "rng": rng_state()}, tmp / "state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(ckpt_root / LATEST, {"step": step, "path": final.name})
    old = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir() and p != final)
    for p in old[:max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path | str) -> Path | None:
    """The folder ``latest.json`` points at, or None when the run has no checkpoint yet."""
    pointer = Path(run_dir) / "checkpoints" / LATEST
    if not pointer.exists():
        return None
    path = pointer.parent / read_json(pointer)["path"]
    if not path.is_dir():
        raise CheckpointError(f"{pointer} points at {path}, which does not exist; delete {pointer} to start over")
    return path


def load_state(path: Path | str) -> dict:
    """Load ``state.pt`` with ``weights_only=True``; a pickled object in it is refused clearly."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} contains pickled Python objects, which the kit refuses to load (they can run "
            f"arbitrary code). Only tensors, numbers, strings, lists and dicts are allowed. ({e})".split("\n")[0]
        ) from None
    except FileNotFoundError:
        raise CheckpointError(f"training state {path} does not exist") from None
