"""Public CelebAMask-HQ face parsers as label-map instruments in the kit's ids.

The paper measures how well a generated face follows its mask by parsing the face and comparing
labels with the mask. Two public parsers trained on CelebAMask-HQ load here, from their own files
(nothing is downloaded):

* **BiSeNet** of zllrunning/face-parsing.PyTorch (``79999_iter.pth``), the most used one:
  :func:`load_bisenet`. Its *class order differs from the kit's*: see :data:`LABEL_ORDERS`.
* the CelebAMask-HQ authors' **U-Net** (switchablenorms/CelebAMask-HQ, ``face_parsing/model.pth``):
  :func:`load_authors_parser`. Its classes are the kit's.

Both return an :class:`ImportedParser` whose :meth:`~ImportedParser.parse` takes images in [-1, 1]
(``(N, 3, H, W)`` of any size, or one ``(3, H, W)`` image) and returns label maps in the kit's ids
(:mod:`maskgan.labels`) at the input size. Preprocessing follows each project's test script:

* BiSeNet (``test.py``): resize to 512x512 bilinearly (PIL; here with antialiasing when shrinking,
  which is what PIL does), RGB in [0, 1], ImageNet mean/std normalisation; the main head's logits.
* U-Net (``tester.py``): resize to 512x512 with *nearest* interpolation (their tester's choice),
  RGB in [-1, 1].

Logits at 512 are resized bilinearly back to the input size before the argmax.

    parser = load_bisenet("79999_iter.pth")
    labels = parser.parse(images)          # (N, H, W) int64, 0 background .. 18 cloth (kit ids)
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import sha256_file
from ..errors import WeightsImportError
from ..labels import CLASS_IDS, CLASS_NAMES
from ..nn.authors_unet import AuthorsUNet
from ..nn.bisenet import BiSeNet
from .authors import map_state_dict, read_state_dict

__all__ = [
    "BISENET_CLASSES",
    "BISENET_TO_KIT",
    "LABEL_ORDERS",
    "PARSER_DIR",
    "ImportedParser",
    "load_authors_parser",
    "load_bisenet",
    "write_parser",
]

#: BiSeNet's class order: value = position (background 0), from the ``atts`` list of
#: zllrunning/face-parsing.PyTorch ``prepropess_data.py`` (``mask[part] = position + 1``, painted in
#: this order, so its overlaps also differ: hair over hat there, hat over hair in the kit).
BISENET_CLASSES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)

#: THE remap table: each parser's class order by name; ``order[i]`` is the class its output ``i`` means.
#: The kit's ids are positions in :data:`maskgan.labels.CLASS_NAMES` (the CelebAMask-HQ authors'
#: merge order, ``face_parsing/Data_preprocessing/g_mask.py`` ``label_list``, background 0).
LABEL_ORDERS: dict[str, tuple[str, ...]] = {
    "bisenet": BISENET_CLASSES,  # zllrunning/face-parsing.PyTorch, prepropess_data.py
    "authors-unet": CLASS_NAMES,  # switchablenorms/CelebAMask-HQ face_parsing: trained on g_mask.py's labels = the kit's
}


def _to_kit(order: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(CLASS_IDS[name] for name in order)


#: BiSeNet output id -> kit id (e.g. BiSeNet 17 "hair" -> kit 13).
BISENET_TO_KIT: tuple[int, ...] = _to_kit(BISENET_CLASSES)

#: Where ``write_parser`` puts imported parsers inside a run directory (or any folder).
PARSER_DIR = "face_parsers"

_NETS = {"bisenet": BiSeNet, "authors-unet": AuthorsUNet}
_NAMES = {"bisenet": "the kit's BiSeNet (zllrunning/face-parsing.PyTorch layout, 19 classes)",
          "authors-unet": "the kit's AuthorsUNet (switchablenorms/CelebAMask-HQ face_parsing layout, 19 classes)"}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class ImportedParser:
    """A foreign face parser behind one interface: :meth:`parse` (kit ids) and :meth:`logits`.

    ``kind`` is ``"bisenet"`` or ``"authors-unet"``; ``info`` records the source file and its sha256.
    """

    input_size = 512  # both networks were trained and tested at 512x512

    def __init__(self, net: torch.nn.Module, kind: str, info: dict | None = None):
        if kind not in _NETS:
            raise ValueError(f"unknown parser kind {kind!r}; expected one of {', '.join(_NETS)}")
        self.net, self.kind, self.info = net.eval(), kind, dict(info or {})
        self.to_kit = torch.tensor(_to_kit(LABEL_ORDERS[kind]), dtype=torch.long)
        self.from_kit = torch.argsort(self.to_kit)  # kit id -> output channel

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device) -> ImportedParser:
        self.net.to(device)
        return self

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"{self.kind} parser expects float RGB images (N, 3, H, W) or (3, H, W) in [-1, 1], "
                             f"got {images.dtype} of shape {tuple(images.shape)}")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1.5 or hi > 1.5:
            raise ValueError(f"{self.kind} parser expects images in [-1, 1], got values in [{lo:.3g}, {hi:.3g}] "
                             f"(from uint8 0..255 use x / 127.5 - 1)")
        return images.to(self.device, torch.float32)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> the network's input at 512x512 (see the module docstring)."""
        s = self.input_size
        if self.kind == "bisenet":
            x = (images + 1) / 2
            if tuple(x.shape[2:]) != (s, s):
                x = F.interpolate(x, (s, s), mode="bilinear", align_corners=False, antialias=True)
            mean = x.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
            return (x - mean) / std
        if tuple(images.shape[2:]) != (s, s):
            return F.interpolate(images, (s, s), mode="nearest")
        return images

    @torch.no_grad()
    def _raw(self, images: torch.Tensor) -> torch.Tensor:
        """Logits in the network's own class order, at the input size."""
        images = self._check(images)
        logits = self.net(self.preprocess(images))
        if logits.shape[2:] != images.shape[2:]:
            logits = F.interpolate(logits, images.shape[2:], mode="bilinear", align_corners=False)
        return logits

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, 19, H, W)`` with channels in the kit's id order."""
        single = images.dim() == 3
        raw = self._raw(images.unsqueeze(0) if single else images)
        out = raw[:, self.from_kit.to(raw.device)]
        return out[0] if single else out

    @torch.no_grad()
    def parse(self, images: torch.Tensor) -> torch.Tensor:
        """Label maps ``(N, H, W)`` (or ``(H, W)`` for one image), int64, in the kit's ids."""
        single = images.dim() == 3
        raw = self._raw(images.unsqueeze(0) if single else images).argmax(dim=1)
        labels = self.to_kit.to(raw.device)[raw]
        return labels[0] if single else labels


def _read(path, kind: str) -> tuple[dict[str, torch.Tensor], str, Path]:
    """A parser's weights: their ``.pth``, or the ``.safetensors`` (or folder) :func:`write_parser` wrote."""
    path = Path(path)
    if path.is_dir():
        path = path / PARSER_DIR / f"{kind}.safetensors"
    if path.suffix != ".safetensors":
        sd, digest = read_state_dict(path)
        return sd, digest, path
    if not path.is_file():
        raise WeightsImportError(f"weights file {path} does not exist; expected a {kind} parser written by "
                                 f"`python -m maskgan import-weights {kind} ... --out`")
    from safetensors.torch import load_file
    try:
        sd = load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise WeightsImportError(f"{path} could not be read as safetensors ({str(e).splitlines()[0]}); "
                                 f"is it truncated?") from None
    return sd, sha256_file(path), path


def _load_parser(path, kind: str) -> ImportedParser:
    sd, digest, path = _read(path, kind)
    with torch.device("meta"):
        net = _NETS[kind]()
    target = net.state_dict()
    state = map_state_dict(sd, {k: k for k in target}, target, kind=kind, source=str(path), what=_NAMES[kind])
    net.load_state_dict(state, strict=True, assign=True)
    return ImportedParser(net, kind, {"kind": kind, "path": str(path.resolve()), "sha256": digest})


def load_bisenet(path) -> ImportedParser:
    """BiSeNet from ``79999_iter.pth`` (zllrunning/face-parsing.PyTorch), strictly checked; outputs kit ids."""
    return _load_parser(path, "bisenet")


def load_authors_parser(path) -> ImportedParser:
    """The CelebAMask-HQ authors' U-Net from ``face_parsing/model.pth``, strictly checked."""
    return _load_parser(path, "authors-unet")


def parser_target(out, kind: str) -> Path:
    """Where :func:`write_parser` puts a ``kind`` parser for ``out`` (a ``.safetensors`` file or a folder)."""
    out = Path(out)
    return out if out.suffix == ".safetensors" else out / PARSER_DIR / f"{kind}.safetensors"


def write_parser(parser: ImportedParser, out, overwrite: bool = False) -> dict:
    """Save an imported parser in the kit's format; returns what was written.

    ``out`` ending in ``.safetensors``: the weights go there, with a ``.json`` record beside them.
    Otherwise ``out`` is a folder (a run directory, say): ``out/face_parsers/<kind>.safetensors`` and
    ``<kind>.json``. Both :func:`load_bisenet` / :func:`load_authors_parser` read either form back.
    A parser already there is replaced only with ``overwrite`` (as an imported generator is never
    replaced); temporary files a killed import left there are removed.
    """
    from ..checkpoint import save_weights
    from ..io import atomic_write_json, remove_tmp_files
    weights = parser_target(out, parser.kind)
    record = weights.with_suffix(".json")
    if weights.exists() and not overwrite:
        raise WeightsImportError(f"{weights} already holds an imported {parser.kind} parser; pass --overwrite "
                                 f"(overwrite=True) to replace it, or choose another --out")
    if weights.is_dir():
        raise WeightsImportError(f"{weights} is a folder; --out must be a folder or a .safetensors file name")
    remove_tmp_files(weights.parent)
    save_weights(parser.net, weights)
    meta = {"kind": parser.kind, "network": f"{type(parser.net).__module__}.{type(parser.net).__name__}",
            "imported": {**parser.info, "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
            "output_classes": list(LABEL_ORDERS[parser.kind]), "output_to_kit_ids": parser.to_kit.tolist()}
    atomic_write_json(record, meta)
    return {"weights": str(weights), "record": str(record), **json.loads(json.dumps(meta))}
