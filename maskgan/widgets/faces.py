"""Faces to edit (a dataset split, cached) and where the app finds its trained run.

A :class:`FaceBank` wraps any kit dataset (items ``{"image", "label", "name"}``, see
:mod:`maskgan.data`) and keeps the faces it has loaded, so switching back and forth between faces in
a dropdown does not re-render or re-read them. The face ``name`` is also the key of the
:class:`~maskgan.editing.Editor`'s style cache: the style of a reference face is computed once.
"""
from __future__ import annotations

import operator
import os
from pathlib import Path

import torch

from ..errors import NoSuchFace

__all__ = ["FaceBank", "resolve_run_dir", "run_status", "RUN_DIR_ENV", "DEFAULT_RUN_DIR"]

#: Environment variable naming the run directory the app loads (``make app`` sets it).
RUN_DIR_ENV = "MASKGAN_RUN_DIR"
#: Run directory used when neither an argument nor the environment names one (``make demo`` writes it).
DEFAULT_RUN_DIR = "runs/demo"
_REPO_ROOT = Path(__file__).resolve().parents[2]


class FaceBank:
    """The first ``max_faces`` faces of a dataset, loaded on first use and kept.

    ``bank[i]`` -> ``{"image": 3xHxW in [-1, 1], "label": HxW int64, "name": str}``;
    :attr:`options` are ``(name, index)`` pairs for an ``ipywidgets.Dropdown``.
    """

    def __init__(self, dataset, max_faces: int = 24):
        if isinstance(max_faces, bool) or not isinstance(max_faces, int) or max_faces < 1:
            raise ValueError(f"max_faces must be a positive integer, got {max_faces!r}")
        try:
            n = len(dataset)
        except TypeError:
            raise TypeError(f"FaceBank needs a dataset with a length (a kit dataset from "
                            f"maskgan.data.build_dataset), got {type(dataset).__name__}") from None
        if n < 1:
            raise ValueError("the dataset is empty: the editing widgets need at least one face")
        self.dataset, self.n = dataset, min(n, max_faces)
        self._items: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.n

    def add(self, item: dict) -> int:
        """Append a face (an uploaded one: ``{"image", "label", "name"}`` at this bank's size, and for a
        photo its ``"photo"`` (file bytes) and crop ``"box"``, kept for pasting edits back); its index.
        Names are style-cache keys, so a name already in the bank is an error."""
        if any(name == item["name"] for name, _ in self.options):
            raise ValueError(f"the bank already has a face named {item['name']!r}")
        if self.n and tuple(item["label"].shape) != tuple(self[0]["label"].shape):
            raise ValueError(f"face {item['name']!r} is {tuple(item['label'].shape)} but this bank's faces are "
                             f"{tuple(self[0]['label'].shape)}")
        self._items[self.n] = {"image": torch.as_tensor(item["image"]).float(),
                               "label": torch.as_tensor(item["label"]).long(), "name": str(item["name"]),
                               **{k: item[k] for k in ("photo", "box") if item.get(k) is not None}}
        self.n += 1
        return self.n - 1

    def index(self, face: int | str) -> int:
        """A face given by index or by name -> its index; anything else is a
        :class:`~maskgan.errors.NoSuchFace` naming the valid range (never clamped to a face that exists)."""
        if isinstance(face, str):
            for i in range(self.n):
                if self[i]["name"] == face:
                    return i
            raise NoSuchFace(f"no face named {face!r} among the first {self.n} faces of the dataset")
        try:
            i = operator.index(face)
        except TypeError:
            raise NoSuchFace(f"a face is given by index (int) or name (str), got {type(face).__name__} "
                             f"{face!r}") from None
        if isinstance(face, bool) or not 0 <= i < self.n:
            raise NoSuchFace(f"face index {face!r} is out of range; this bank has faces 0..{self.n - 1}")
        return i

    def other(self, face: int | str) -> int:
        """Like :meth:`index`, for a second face (face B, the reference, the donor) whose default is 1:
        1 falls back to face 0 when the bank holds one face only; any other value must exist."""
        if self.n == 1 and not isinstance(face, (bool, str)) and face == 1:
            return 0
        return self.index(face)

    def __getitem__(self, face: int | str) -> dict:
        if isinstance(face, str):
            face = self.index(face)
        i = self.index(face)
        if i not in self._items:
            item = self.dataset[i]
            label = item["label"]
            self._items[i] = {"image": torch.as_tensor(item["image"]).float(),
                              "label": torch.as_tensor(label).long(),
                              "name": str(item.get("name", f"face {i}"))}
        return self._items[i]

    @property
    def size(self) -> int:
        """Side of the faces in pixels."""
        return int(self[0]["label"].shape[-1])

    @property
    def options(self) -> list[tuple[str, int]]:
        """``(name, index)`` pairs, for dropdowns (from the dataset's ``names`` when it has them, so
        a folder of big photos is not read just to list it)."""
        names = getattr(self.dataset, "names", None)
        listed = names is not None and len(names) >= len(self.dataset)
        return [(str(names[i]) if listed and i not in self._items else self[i]["name"], i) for i in range(self.n)]


def _has_generator(path: Path) -> bool:
    from ..run import Run
    return bool(Run(path, report=None).trained())


def resolve_run_dir(run_dir: str | Path | None = None) -> Path:
    """The run directory the app loads: ``run_dir`` if given, else ``$MASKGAN_RUN_DIR``, else
    ``runs/demo``. A relative path is looked up from the working directory first and then from
    the repository root (Voila and Jupyter start kernels in the notebook's folder).

    ``pretrained`` (or ``pretrained/<name>``) names the models shipped with the kit; they are also
    what the default ``runs/demo`` falls back to while it holds no trained generator."""
    chosen = Path(run_dir or os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR).expanduser()
    from ..pretrained import DEFAULT_PRETRAINED, PRETRAINED_ROOT
    if chosen.parts and chosen.parts[0] == "pretrained" and not chosen.exists():
        return PRETRAINED_ROOT / (chosen.parts[1] if len(chosen.parts) > 1 else DEFAULT_PRETRAINED)
    if not (chosen.is_absolute() or chosen.exists()):
        from_root = _REPO_ROOT / chosen
        chosen = from_root if from_root.exists() else chosen
    if chosen.resolve() == PRETRAINED_ROOT.resolve():  # `make app RUN_DIR=pretrained` passes its absolute path
        return PRETRAINED_ROOT / DEFAULT_PRETRAINED
    default = (_REPO_ROOT / DEFAULT_RUN_DIR).resolve()
    shipped = PRETRAINED_ROOT / DEFAULT_PRETRAINED
    if chosen.resolve() in (default, Path(DEFAULT_RUN_DIR).resolve()) and not _has_generator(chosen) \
            and shipped.is_dir():
        return shipped
    return chosen


def run_status(run_dir: str | Path | None = None) -> tuple[bool, str]:
    """``(ready, message)``: whether ``run_dir`` has what the app needs, and what to do if not.

    The app needs a generator (EBST or stage I) that actually loads: the check loads it (a damaged
    newest checkpoint falls back to an older intact one, said in the message); the interpolation
    tab also needs the MaskVAE.
    """
    from ..editing import Editor
    from ..errors import MaskGANError
    from ..pretrained import is_pretrained, pretrained_label, pretrained_run
    path = resolve_run_dir(run_dir)
    notes: list[str] = []
    try:
        from ..run import Run
        if is_pretrained(path):
            pretrained_run(path.name)  # every shipped file checked against its recorded sha256
        editor = Editor.from_run(Run(path, report=notes.append))
    except MaskGANError as e:
        if is_pretrained(path):  # the shipped set itself failed: recommending it again would not help
            return False, (f"{e}\nThe shipped models in {path} do not load; `git checkout -- {path}` restores "
                           "them, or `make demo` trains your own into runs/demo.")
        return False, (f"{e}\n`make demo` trains every stage into runs/demo; then `make app RUN_DIR=runs/demo`. "
                       "The MaskGAN authors' weights go into a run directory with `python -m maskgan import-weights "
                       f"authors-generator latest_net_G.pth --run-dir {path}` (docs/real-faces.md). "
                       "`make app RUN_DIR=pretrained` serves the models shipped with the kit.")
    said = "".join(f" ({n})" for n in notes)
    if is_pretrained(path):
        said += f" -- {pretrained_label(path.name)}; `make demo` trains your own into runs/demo"
    if editor.vae is None:
        from ..stages import get_stage  # the hint carries the run's preset and overrides (editor.cfg)
        return True, (f"{path}: DMN from the {editor.stage!r} stage{said}; no MaskVAE checkpoint, so the "
                      f"interpolation tab is off (to train it, {get_stage('vae').how_to_train(path, editor.cfg)}).")
    return True, f"{path}: DMN from the {editor.stage!r} stage, MaskVAE from vae/{said}."
