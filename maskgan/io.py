"""Small file helpers: every write in the kit is atomic (temporary file in the same folder, then
rename), so an interrupted run never leaves a half-written file behind."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_save_png", "read_json",
           "remove_tmp_files"]


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give them the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); the file is damaged") from None


def atomic_save_png(path, array: np.ndarray) -> Path:
    """Save a uint8 array (H x W label map or H x W x 3 image) as PNG, atomically."""
    from PIL import Image
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise ValueError(f"atomic_save_png expects uint8, got {arr.dtype} for {path}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


def remove_tmp_files(folder) -> list[Path]:
    """Remove the temporary files of atomic writes that a killed process left in ``folder``
    (``.<name>.<random>.tmp``, as :func:`atomic_write_bytes` and ``checkpoint.save_weights`` name
    them); call it only when no other process writes there. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()]
    for p in removed:
        p.unlink(missing_ok=True)
    return removed
