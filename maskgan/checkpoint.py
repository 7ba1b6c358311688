"""Checkpoints that survive kills, power loss and damaged files.

A stage's checkpoints live in ``<run_dir>/<stage>/checkpoints/``::

    step_0000123/
      <net>.safetensors   one per network: plain tensors, safe to share, load anywhere
      config.json         the full Config, the stage, and the LR schedule's total
      state.pt            optimizers, schedulers, grad scalers, step, RNG states (python, numpy,
                          torch, CUDA); read with torch.load(weights_only=True): a pickled
                          object is refused
      manifest.json       step, and the sha256 and size of every file above
    latest.json           {"step": 123, "path": "step_0000123"}

**Writing.** Everything goes into a hidden temporary folder; each file is fsynced, the manifest
is written last, the folder is fsynced and renamed into place, the parent folder is fsynced, and
only then ``latest.json`` is replaced. A process killed (or a machine losing power) at any
moment leaves every published checkpoint complete. Leftovers of killed writes are removed by
:func:`clean_leftovers` at the next start (under the stage lock).

**Reading.** :func:`find_checkpoint` returns the newest *intact* checkpoint: each file's size and
sha256 must match the manifest. A damaged one is skipped with one line saying which and why, and
the next older one is used; a missing or garbled ``latest.json`` never hides the checkpoints that
exist. Checkpoints written before manifests existed are accepted as they are.

**Locking.** :class:`StageLock` marks a stage folder as being trained by one process.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import random
import re
import shutil
import socket
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import CheckpointError, MaskGANError, RunLocked, storage_error
from .io import atomic_write_json, read_json, remove_tmp_files

__all__ = [
    "Checkpoint", "save_checkpoint", "find_checkpoint", "list_checkpoints", "latest_checkpoint", "load_state",
    "load_weights", "save_weights", "rng_state", "set_rng_state", "clean_leftovers", "StageLock", "sha256_file",
    "LATEST", "MANIFEST", "check_file", "file_record", "ConfigChanged",
]

LATEST = "latest.json"
MANIFEST = "manifest.json"
_STEP_PREFIX = "step_"


# --- RNG states ---------------------------------------------------------------------------------

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


# --- files ----------------------------------------------------------------------------------------

def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_record(path: Path) -> dict:
    """``{"sha256", "size"}`` of a file, as manifests and the shipped models' record keep them."""
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def check_file(path: Path, expected: dict, listed_in: str) -> None:
    """A file against its recorded ``{"size", "sha256"}``; raises :class:`CheckpointError` naming the
    file, what differs, and where the record is (``listed_in``)."""
    if not path.exists():
        raise CheckpointError(f"{path} is missing (listed in {listed_in})")
    size = path.stat().st_size
    if size != expected["size"]:
        raise CheckpointError(f"{path} has {size} bytes; {listed_in} says {expected['size']}")
    actual = sha256_file(path)
    if actual != expected["sha256"]:
        raise CheckpointError(f"{path} is damaged or was changed: sha256 {actual[:16]}..., {listed_in} says "
                              f"{expected['sha256'][:16]}...")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP / torch.compile wrappers, whose state-dict keys are the plain ones."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


def save_weights(module: torch.nn.Module, path: Path | str, dtype: torch.dtype | None = None) -> Path:
    """Write a module's state dict as safetensors, atomically and fsynced (``dtype``: cast floats)."""
    from safetensors.torch import save
    tensors = {}
    for k, v in _unwrap(module).state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(save(tensors))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_weights(module: torch.nn.Module, path: Path | str) -> torch.nn.Module:
    """Load safetensors weights into a module (strict), with errors that name the file. Half-precision
    files (the kit's shipped weights) are cast to the module's dtype."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"weights file {path} is damaged or not a safetensors file ({e})") from None
    target = _unwrap(module)
    ref = target.state_dict()
    try:
        missing, unexpected = target.load_state_dict(
            {k: v.to(device=ref[k].device, dtype=ref[k].dtype) if k in ref else v for k, v in tensors.items()},
            strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"{path} does not fit {type(target).__name__} (was it written with another "
                              f"configuration?): {str(e).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit {type(target).__name__}: missing keys {missing[:5]}, "
                              f"unexpected keys {unexpected[:5]} (was it written with another configuration?)")
    return module


def load_state(path: Path | str) -> dict:
    """Load ``state.pt`` with ``weights_only=True``; a pickled object in it is refused clearly, a
    damaged file is named."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"training state {path} does not exist")
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        raise CheckpointError(f"training state {path} is damaged (it is not a complete torch.save archive: "
                              f"{path.stat().st_size} bytes, no zip directory)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{path} contains pickled Python objects{what}, which the kit refuses to load (they can run "
            f"arbitrary code). Only tensors, numbers, strings, lists and dicts are allowed.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"training state {path} is damaged ({str(e).splitlines()[0][:120]})") from None


# --- one checkpoint -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    """One published checkpoint folder of a stage."""
    path: Path
    step: int

    def file(self, name: str) -> Path:
        return self.path / name

    def weights(self, net: str) -> Path:
        return self.path / f"{net}.safetensors"

    def record(self) -> dict:
        """``config.json``: ``{"stage", "config", "schedule"}`` (errors name the file)."""
        path = self.path / "config.json"
        if not path.exists():
            raise CheckpointError(f"{path} is missing: the checkpoint {self.path} is incomplete")
        try:
            data = read_json(path)
        except ValueError as e:
            raise CheckpointError(f"{path} is damaged: {e}") from None
        if not isinstance(data, dict) or "config" not in data:
            raise CheckpointError(f"{path} is not a checkpoint config (expected keys 'stage' and 'config')")
        return data

    def config(self):
        """The :class:`maskgan.config.Config` this checkpoint was trained with."""
        from .config import Config
        from .errors import ConfigError
        try:
            return Config.from_dict(self.record()["config"])
        except ConfigError as e:
            raise CheckpointError(f"{self.path / 'config.json'}: {e}") from None

    def state(self) -> dict:
        return load_state(self.path / "state.pt")

    def load(self, net: str, module: torch.nn.Module) -> torch.nn.Module:
        return load_weights(module, self.weights(net))

    def manifest(self) -> dict | None:
        path = self.path / MANIFEST
        if not path.exists():
            return None
        try:
            return read_json(path)
        except ValueError as e:
            raise CheckpointError(f"{path} is damaged: {e}") from None

    def verify(self) -> None:
        """Check every file against the manifest; raise naming the file and both digests. When only
        ``config.json`` differs (edited by hand; the weights are intact) the error is a
        :class:`ConfigChanged`, so that the message can say so."""
        manifest = self.manifest()
        if manifest is None:
            return  # written before manifests existed: nothing to check against
        files = manifest.get("files", {})
        for name in sorted(files, key=lambda n: n == "config.json"):  # the weights and state first
            try:
                check_file(self.path / name, files[name], f"its manifest ({self.path / MANIFEST})")
            except CheckpointError:
                if name == "config.json" and (self.path / name).exists():
                    raise ConfigChanged(f"{self.path / name} was changed after the checkpoint was written (it no "
                                        f"longer matches {MANIFEST}); its weights are intact") from None
                raise


class ConfigChanged(CheckpointError):
    """A checkpoint whose ``config.json`` differs from its manifest while its weights match it."""


def _step_from_name(path: Path) -> int | None:
    name = path.name
    if not name.startswith(_STEP_PREFIX):
        return None
    try:
        return int(name[len(_STEP_PREFIX):])
    except ValueError:
        return None


def list_checkpoints(stage_dir: Path | str) -> list[Checkpoint]:
    """Every published checkpoint folder of a stage, newest first (nothing is verified here)."""
    root = Path(stage_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        step = _step_from_name(p)
        if step is not None and p.is_dir():
            found.append(Checkpoint(p, step))
    return sorted(found, key=lambda c: c.step, reverse=True)


_VERIFIED: dict[tuple[str, float], bool] = {}


def _verify_cached(ckpt: Checkpoint) -> None:
    manifest = ckpt.path / MANIFEST
    key = (str(ckpt.path), manifest.stat().st_mtime if manifest.exists() else 0.0)
    if key in _VERIFIED:
        return
    ckpt.verify()
    _VERIFIED[key] = True


def find_checkpoint(stage_dir: Path | str, *, verify: bool = True,
                    report: Callable[[str], None] | None = print) -> Checkpoint | None:
    """The newest intact checkpoint of a stage folder, or None when it has none at all.

    ``latest.json`` names the newest; if it is missing, garbled or dangling, the folders are
    scanned instead (said in one line). With ``verify``, a checkpoint whose files do not match its
    manifest is skipped (one line: which and why) for the next older one. Raises
    :class:`CheckpointError` when checkpoints exist but none is intact.
    """
    stage_dir = Path(stage_dir)
    found = list_checkpoints(stage_dir)
    if not found:
        pointer = stage_dir / "checkpoints" / LATEST
        if pointer.exists():
            raise CheckpointError(f"{pointer} points at a checkpoint, but {pointer.parent} holds none; "
                                  f"delete {pointer} to start over")
        return None
    say = report or (lambda line: None)
    pointer = stage_dir / "checkpoints" / LATEST
    newest = found[0].path.name
    if not pointer.exists():
        say(f"note: {pointer} is missing; using the newest checkpoint folder, {newest}")
    else:
        try:
            named = read_json(pointer)["path"]
        except (ValueError, KeyError, TypeError) as e:
            say(f"note: {pointer} is damaged ({e}); using the newest checkpoint folder, {newest}")
        else:
            if not (pointer.parent / named).is_dir():
                say(f"note: {pointer} points at {named}, which does not exist; using {newest}")
            # a folder newer than the pointer (a kill between the rename and the pointer update)
            # is complete, since the rename published it, so the newest folder is used either way
    if not verify:
        return found[0]
    problems: list[CheckpointError] = []
    for i, ckpt in enumerate(found):
        try:
            _verify_cached(ckpt)
        except CheckpointError as e:
            problems.append(e)
            older = found[i + 1].path.name if i + 1 < len(found) else None
            say(f"warning: skipping checkpoint {ckpt.path} ({e})" +
                (f"; falling back to the older {older}" if older else ""))
            continue
        return ckpt
    if all(isinstance(p, ConfigChanged) for p in problems):
        names = ", ".join(c.path.name for c in found)
        raise CheckpointError(
            f"the config.json of every checkpoint in {stage_dir / 'checkpoints'} ({names}) was changed after it was "
            "written; every weights file is intact. The kit loads a checkpoint only with the configuration it was "
            "trained with: put the original config.json files back (each checkpoint's manifest.json records their "
            "sha256 and size). To use another configuration, train into another --run-dir (or pass --set options) "
            "instead of editing a checkpoint.")
    raise CheckpointError(f"every checkpoint in {stage_dir / 'checkpoints'} is damaged: "
                          + "; ".join(str(p) for p in problems)
                          + f". Delete {stage_dir} to train this stage from scratch.")


def latest_checkpoint(stage_dir: Path | str) -> Path | None:
    """The folder of the newest intact checkpoint of a stage (see :func:`find_checkpoint`), or None."""
    ckpt = find_checkpoint(stage_dir)
    return ckpt.path if ckpt is not None else None


def save_checkpoint(stage_dir: Path | str, step: int, nets: dict[str, torch.nn.Module], state: dict,
                    config: dict, keep: int = 2) -> Path:
    """Write ``checkpoints/step_<step>/`` (see the module docstring) and point ``latest.json`` at it.

    ``state`` holds everything else needed to resume (optimizer/scheduler/scaler state dicts, the
    schedule ...); the step and the RNG states are added here. Only the newest ``keep`` are kept.
    """
    ckpt_root = Path(stage_dir) / "checkpoints"
    final = ckpt_root / f"{_STEP_PREFIX}{step:07d}"
    tmp = None
    try:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp_step_{step:07d}_", dir=ckpt_root))
        for name, net in nets.items():
            save_weights(net, tmp / f"{name}.safetensors")
        atomic_write_json(tmp / "config.json", config)
        torch.save({**state, "step": step, "rng": rng_state()}, tmp / "state.pt")
        _fsync_file(tmp / "state.pt")
        files = {p.name: file_record(p) for p in sorted(tmp.iterdir())}
        atomic_write_json(tmp / MANIFEST, {"step": step, "files": files})
        os.chmod(tmp, 0o755)
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(ckpt_root)
        atomic_write_json(ckpt_root / LATEST, {"step": step, "path": final.name})
        _fsync_dir(ckpt_root)
    except BaseException as e:
        full = isinstance(e, RuntimeError) and _disk_full(ckpt_root)  # before the removal frees space
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) or full:
            raise _write_error(e, final) from e
        raise
    old = [c.path for c in list_checkpoints(stage_dir) if c.path != final]
    for p in old[max(0, keep - 1):]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def _disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether the disk holding ``folder`` has less than ``margin`` bytes left (torch.save reports a
    full disk as a RuntimeError about its zip writer, not as the OSError it is)."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _write_error(e: BaseException, target: Path) -> BaseException:
    """The kit's error for a failed checkpoint write of ``target`` (errors of the kit pass unchanged)."""
    if isinstance(e, MaskGANError):
        return e
    if isinstance(e, OSError):
        return storage_error(e, target)
    return storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), target)


def clean_leftovers(stage_dir: Path | str) -> list[Path]:
    """Remove what killed writes left behind (``.tmp_step_*`` folders, ``.*.tmp`` files) in a stage
    folder and its checkpoints; call it only while holding the stage's :class:`StageLock`."""
    removed = []
    for folder in (Path(stage_dir), Path(stage_dir) / "checkpoints"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".tmp_step_") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        removed += remove_tmp_files(folder)
    return removed


# --- the stage lock -------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StageLock:
    """``<stage_dir>/.lock``, held by the process that trains the stage (a context manager).

    A second process fails fast with :class:`RunLocked` naming the holder's PID. A lock left by a
    process that no longer exists (on this host) is taken over, with a message.
    """

    def __init__(self, stage_dir: Path | str, report: Callable[[str], None] | None = print):
        self.path = Path(stage_dir) / ".lock"
        self.report = report or (lambda line: None)
        self.held = False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "StageLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                pid, host = holder.get("pid"), holder.get("host")
                if isinstance(pid, int) and host == me["host"] and not _alive(pid):
                    self.report(f"note: taking over the stale lock {self.path} of process {pid}, "
                                f"which no longer exists")
                    self.path.unlink(missing_ok=True)
                    continue
                if not holder:
                    self.report(f"note: {self.path} is unreadable (a killed write?); taking it over")
                    self.path.unlink(missing_ok=True)
                    continue
                where = f" on {host}" if host != me["host"] else ""
                raise RunLocked(
                    f"{self.path.parent} is being trained by process {pid}{where} (since {holder.get('since')}). "
                    f"Wait for it, stop it, or choose another --run-dir. If that process is gone, delete "
                    f"{self.path}.") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            self.held = True
            return self
        raise RunLocked(f"could not take the lock {self.path}")  # pragma: no cover - raced twice

    def release(self) -> None:
        if self.held and self._holder().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> "StageLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
