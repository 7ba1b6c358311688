"""The kit's errors: one family under :class:`MaskGANError`.

Every error the kit raises on purpose (bad input, a missing stage, a damaged checkpoint, a locked
run directory, a NaN loss) is a :class:`MaskGANError`. Its message is written for the user: it
names the file, the value and what was expected, and says what to do next. The command line
catches the family once for every command and prints the message without a traceback (exit code
2; ``--debug`` shows the traceback); anything else escaping is a bug of the kit.

The specific errors keep a familiar built-in base where callers may already catch one
(``ConfigError`` is also a ``ValueError``, ``StageMissing`` a ``FileNotFoundError``).
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

__all__ = [
    "MaskGANError", "ConfigError", "LabelError", "DataError", "DataMissing", "CheckpointError", "StageMissing",
    "TrainingError", "RunLocked", "WeightsImportError", "PipelineError", "PreparationError", "StorageError",
    "storage_error", "NoSuchFace",
]


class MaskGANError(Exception):
    """Base class of every error the kit raises on purpose; its message is meant for the user."""


class ConfigError(MaskGANError, ValueError):
    """A configuration value or key is invalid."""


class LabelError(MaskGANError, ValueError):
    """A label map holds values outside the 19 CelebAMask-HQ classes, or has the wrong shape."""


class DataError(MaskGANError, ValueError):
    """A dataset file is missing, unreadable or inconsistent (the message names the file)."""


class NoSuchFace(ConfigError, IndexError):
    """A face index or name that the app's face bank does not have (the message gives the valid range)."""


class DataMissing(DataError, FileNotFoundError):
    """A dataset folder or file that should exist does not (the message says how to make it)."""


class CheckpointError(MaskGANError):
    """A checkpoint is missing, damaged, unsafe, or does not match the run it is loaded into."""


class StageMissing(MaskGANError, FileNotFoundError):
    """A run directory lacks a stage that is needed; the message names the notebook and the command."""


class TrainingError(MaskGANError):
    """Training cannot go on (a NaN loss, a run directory of another config, a bad step count)."""


class RunLocked(TrainingError):
    """Another live process is training the same stage of the same run directory."""


class WeightsImportError(CheckpointError):
    """A foreign weights file (the authors' generator, a face parser) does not fit the kit's network."""


class PipelineError(MaskGANError):
    """A notebook of the pipeline failed or cannot run."""


class PreparationError(MaskGANError):
    """Dataset preparation found problems (the report lists every file)."""


class StorageError(MaskGANError, OSError):
    """A file or folder cannot be written or read: a full disk, a read-only folder, a file where a
    folder is expected (or the reverse), missing permissions. Made by :func:`storage_error` from the
    operating system's error; the message names the path and says what to do."""


def _first_file(path: Path) -> Path | None:
    """The first part of ``path`` (from the root) that exists and is not a folder, if any."""
    for part in reversed([path, *path.parents]):
        if part.exists() and not part.is_dir():
            return part
    return None


def _published_name(filename) -> str:
    """The file a temporary file of an atomic write stands for (``.metrics.json.k2x9.tmp`` ->
    ``metrics.json``, as :mod:`maskgan.io` names them), else ``filename`` itself."""
    path = Path(os.fsdecode(filename))
    match = re.fullmatch(r"\.(.+)\.[A-Za-z0-9_]+\.tmp", path.name)
    return str(path.with_name(match.group(1))) if match else str(path)


def storage_error(e: OSError, where: str | os.PathLike | None = None) -> StorageError:
    """The kit's error for an operating-system error ``e``. ``where``: the file or folder being
    written, for errors that carry no file name (a write that fills the disk has none). Everything
    the kit wrote before is complete: every write is atomic (temporary file, then rename)."""
    if isinstance(e, StorageError):
        return e
    path = _published_name(e.filename) if e.filename else where
    name = f"{path}" if path is not None else "a file"
    code = e.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", None):
        text = (f"no space left on the disk that holds {name} ({e.strerror}); free some space, or choose a folder on "
                "another disk, and run the command again. What was written before is complete")
    elif code == errno.EROFS:
        text = f"{name} is on a read-only file system; choose a folder you can write (another --run-dir or --out)"
    elif code in (errno.EACCES, errno.EPERM):
        text = (f"{name} cannot be {'read or ' if e.filename else ''}written: permission denied; choose a folder you "
                "can write (another --run-dir or --out) or change its permissions")
    elif code == errno.ENOTDIR:
        blocker = _first_file(Path(path)) if path is not None else None
        text = (f"{blocker} is a file, but a folder is needed there (for {name}); choose another path or move the "
                "file away" if blocker is not None else f"{name}: a part of this path is a file, not a folder")
    elif code == errno.EEXIST and path is not None and Path(path).exists() and not Path(path).is_dir():
        text = f"{name} is a file, but a folder is needed there; choose another path or move the file away"
    elif code == errno.EISDIR:
        text = f"{name} is a folder, but a file is needed there; name the file itself"
    elif code == errno.ENOENT:
        text = f"{name} does not exist"
    else:
        text = f"{name}: {e.strerror or e}"
    return StorageError(text)  # errno/filename stay unset: OSError's str() would show them instead of the text
