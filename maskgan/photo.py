"""A photo without a mask, ready for the editor: square crop around the face, resize, parse.

MaskGAN renders a face from a semantic mask ``M^t`` in the style of ``(I^t, M^t)`` (Fig. 2), so a
photo needs a mask before it can be edited. A face parser gives it: the CelebAMask-HQ parsers
imported by :mod:`maskgan.interop` (BiSeNet, the authors' U-Net: an
:class:`~maskgan.interop.ImportedParser`) or the kit's own U-Net of a run's ``parser`` stage (the
evaluation's instrument, :class:`maskgan.nn.FaceParser`). Any object with
``parse(images (N, 3, H, W) in [-1, 1]) -> (N, H, W) kit ids`` serves.

The steps of :func:`prepare_photo`:

1. **find the face**: parse the whole photo once (padded to a square, at the model's size), take
   the bounding box of the *face* classes (skin, brows, eyes, glasses, ears, nose, mouth, lips;
   hair, neck and cloth are left out because they run to the picture's edges), and grow it to a
   square whose side is ``1 + 2 * margin`` times the box's longer side, centred on the box
   (``margin=0.45`` makes the face about half the crop's width, as in CelebA-HQ). A box the user
   gives (``box=(left, top, right, bottom)`` in photo pixels) replaces this step;
2. **crop**: the square is moved inside the photo (and shrunk if the photo is smaller), never
   padded, so no invented pixels enter the style;
3. **resize** to the model's size with LANCZOS, and **parse** the crop: that label map is ``M^t``.

How far this is from CelebA-HQ: CelebA-HQ aligns every face by five landmarks (eyes, nose, mouth
corners), *rotates* it upright and scales it so the eye-to-mouth distance is fixed, then crops.
This crop neither rotates nor normalises the eye-mouth distance; a tilted or off-centre face stays
tilted and off-centre, and the DMN, trained on aligned faces only, renders such faces worse
(textures smear, features drift toward where aligned faces have them). Frontal, upright photos
work best. The README section "Edit real faces with the authors' weights" says the same.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.folder import FolderFaces, open_image
from .data.tensors import image_to_tensor
from .errors import DataError, DataMissing, StageMissing
from .labels import CLASS_IDS

__all__ = ["FACE_CLASSES", "face_box", "square_box", "crop_photo", "prepare_photo", "open_faces", "load_parser",
           "PhotoParser", "DOWNLOADS", "real_face_inputs"]

#: Classes whose pixels locate the face (not hair, neck, cloth, hat or earrings: they reach the edges).
FACE_CLASSES: tuple[str, ...] = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
                                 "r_ear", "mouth", "u_lip", "l_lip")
_FACE_IDS = np.array([CLASS_IDS[c] for c in FACE_CLASSES])


def face_box(label) -> tuple[int, int, int, int] | None:
    """Bounding box ``(left, top, right, bottom)`` (right/bottom exclusive) of the face classes of a
    label map, falling back to every non-background pixel; None when the map is all background."""
    arr = label.cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
    for sel in (np.isin(arr, _FACE_IDS), arr > 0):
        ys, xs = np.nonzero(sel)
        if len(xs):
            return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return None


def square_box(box, width: int, height: int, margin: float = 0.45) -> tuple[int, int, int, int]:
    """A square around ``box`` (grown by ``margin`` of its longer side on every side), moved inside
    a ``width x height`` picture and shrunk to fit it when needed."""
    if margin < 0:
        raise DataError(f"margin must be >= 0 (a fraction of the face box), got {margin!r}")
    left, top, right, bottom = (float(v) for v in box)
    if not (right > left and bottom > top):
        raise DataError(f"crop box {tuple(box)} is empty; expected (left, top, right, bottom) with right > left "
                        "and bottom > top, in photo pixels")
    side = min(max(right - left, bottom - top) * (1 + 2 * margin), width, height)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    s = int(round(side))
    x0, y0 = int(round(x0)), int(round(y0))
    return x0, y0, min(x0 + s, width), min(y0 + s, height)


def _as_pil(photo, name: str) -> Image.Image:
    if isinstance(photo, Image.Image):
        return photo.convert("RGB")
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise DataError(f"{name}: expected a uint8 H x W x 3 RGB array, got {photo.dtype} {photo.shape}")
        return Image.fromarray(photo)
    with open_image(photo, name) as im:
        return im.convert("RGB")


def _to_tensor(im: Image.Image, size: int) -> torch.Tensor:
    if im.size != (size, size):
        im = im.resize((size, size), Image.LANCZOS)
    return image_to_tensor(np.asarray(im, dtype=np.uint8))


@torch.no_grad()
def _parse(parser, image: torch.Tensor) -> torch.Tensor:
    device = getattr(parser, "device", None)
    if device is None and isinstance(parser, torch.nn.Module):
        device = next(parser.parameters()).device
    labels = parser.parse(image.unsqueeze(0).to(device or "cpu"))
    return labels[0].long().cpu()


def crop_photo(photo, parser, size: int, margin: float = 0.45, name: str = "photo") -> tuple[int, int, int, int]:
    """The automatic square crop box of a photo (step 1 of :func:`prepare_photo`), in photo pixels."""
    im = _as_pil(photo, name)
    w, h = im.size
    side = max(w, h)
    padded = Image.new("RGB", (side, side))  # pad to a square (top-left), parse once at the model's size
    padded.paste(im, (0, 0))
    label = _parse(parser, _to_tensor(padded, size))
    box = face_box(label)
    if box is None:
        raise DataError(f"{name}: the face parser found no face (every pixel is background); give the crop "
                        "yourself with box=(left, top, right, bottom) in photo pixels")
    k = side / size
    return square_box(tuple(v * k for v in box), w, h, margin)


def prepare_photo(photo, parser, size: int, box=None, margin: float = 0.45, name: str = "photo") -> dict:
    """A photo (path, bytes, PIL image or uint8 array) -> ``{"image", "label", "name", "box"}`` for
    the :class:`~maskgan.editing.Editor`: face crop (automatic, or ``box`` in photo pixels, made
    square), resized to ``size``, parsed by ``parser`` (see the module docstring)."""
    if parser is None:
        raise DataError(f"{name} has no mask, and no face parser was given to make one: import one "
                        "(`python -m maskgan import-weights bisenet 79999_iter.pth --out DIR`) and pass "
                        "parser=maskgan.photo.load_parser(DIR), or add the mask (a single-channel PNG of ids 0..18)")
    im = _as_pil(photo, name)
    if box is None:
        box = crop_photo(im, parser, size, margin, name)
    else:
        box = square_box(box, *im.size, margin=0.0)
    image = _to_tensor(im.crop(box), size)
    return {"image": image, "label": _parse(parser, image), "name": str(name), "box": tuple(int(v) for v in box)}


class PhotoParser:
    """``photo(pil_image, size, name) -> item``: the hook :class:`~maskgan.data.folder.FolderFaces` calls
    for images without a mask (automatic face crop, then parse)."""

    def __init__(self, parser, margin: float = 0.45):
        self.parser, self.margin = parser, margin

    def __call__(self, im: Image.Image, size: int, name: str = "photo") -> dict:
        return prepare_photo(im, self.parser, size, margin=self.margin, name=name)


def open_faces(folder, size: int, parser=None, margin: float = 0.45) -> FolderFaces:
    """The faces of ``folder`` (see :mod:`maskgan.data.folder`); images without a mask are cropped
    and parsed by ``parser`` (a path for :func:`load_parser`, or a loaded parser)."""
    if isinstance(parser, (str, Path)):
        parser = load_parser(parser)
    return FolderFaces(folder, size, photo=PhotoParser(parser, margin) if parser is not None else None)


def load_parser(source, kind: str | None = None, device: str = "cpu"):
    """A face parser from ``source``:

    * a run directory with imported parsers (``face_parsers/bisenet.safetensors`` or
      ``authors-unet.safetensors``, written by ``python -m maskgan import-weights``): that one
      (``kind`` picks when both are there; BiSeNet first);
    * a run directory with a trained ``parser`` stage: the kit's own U-Net (trained on the run's data:
      SynthFaces parsers do not parse photos);
    * a file: ``kind="bisenet"`` (default) or ``"authors-unet"`` (their ``.pth`` or the kit's
      ``.safetensors``).
    """
    from .interop import load_authors_parser, load_bisenet
    from .interop.faceparsing import PARSER_DIR
    loaders = {"bisenet": load_bisenet, "authors-unet": load_authors_parser}
    if kind is not None and kind not in loaders:
        raise DataError(f"unknown parser kind {kind!r}; expected one of {', '.join(loaders)}")
    path = Path(source)
    if not path.exists():
        raise DataMissing(f"face parser {path} does not exist; expected a run directory with face_parsers/ "
                          "(python -m maskgan import-weights bisenet 79999_iter.pth --out RUN_DIR) or a trained "
                          "'parser' stage, or a parser file (79999_iter.pth, or the .safetensors the import wrote)")
    if path.is_dir():
        for k in ([kind] if kind else list(loaders)):
            if (path / PARSER_DIR / f"{k}.safetensors").is_file():
                return loaders[k](path).to(device)
        from .run import Run
        run = Run(path, report=None)
        if run.has("parser"):
            return run.load_net("parser", device=device)[0]
        raise StageMissing(f"{path} has no face parser: neither {PARSER_DIR}/bisenet.safetensors nor a trained "
                           f"'parser' stage. Import one: `python -m maskgan import-weights bisenet 79999_iter.pth "
                           f"--out {path}` (79999_iter.pth is linked from zllrunning/face-parsing.PyTorch's README)")
    return loaders[kind or "bisenet"](path).to(device)


#: Where the foreign files come from (the kit ships none of them).
DOWNLOADS: dict[str, str] = {
    "generator": ("latest_net_G.pth, the MaskGAN authors' generator (512², CelebAMask-HQ): linked from the README "
                  "of github.com/switchablenorms/CelebAMask-HQ (MaskGAN_demo, pretrained model). Non-commercial "
                  "research use only."),
    "parser": ("79999_iter.pth, the BiSeNet face parser trained on CelebAMask-HQ: linked from the README of "
               "github.com/zllrunning/face-parsing.PyTorch. Needed for photos without a mask."),
    "faces": ("a folder of faces: <name>.jpg with <name>.png label maps (ids 0..18), e.g. the authors' demo samples "
              "(MaskGAN_demo/samples in switchablenorms/CelebAMask-HQ) or CelebAMask-HQ images with their merged "
              "masks; or one photo (needs the parser)."),
}


def real_face_inputs(generator: str = "", run_dir: str = "", faces: str = "", photo: str = "", parser: str = "",
                     report=print) -> bool:
    """Whether notebook 07 has what it needs; prints what is found and, for what is missing, exactly
    what to download and where to put it. Never raises: the notebook's later cells check the result.

    Needs a generator (``generator`` file, or a ``run_dir`` imported before: it has a ``dmn``
    stage), and faces: a ``faces`` folder, or a ``photo`` plus a ``parser`` file."""
    from .run import Run
    missing, found = [], []
    has_run = bool(run_dir) and Run(run_dir, report=None).has("dmn")
    if generator and Path(generator).is_file():
        found.append(f"generator: {generator}")
    elif has_run and not generator:
        found.append(f"generator: imported before into {run_dir}")
    else:
        missing.append(("generator", f"generator = {generator!r} is not a file" if generator else "generator is empty"))
    if parser and not Path(parser).is_file():
        missing.append(("parser", f"parser = {parser!r} is not a file"))
    elif parser:
        found.append(f"parser: {parser}")
    if faces and Path(faces).is_dir():
        found.append(f"faces: {faces}")
    elif photo and Path(photo).is_file():
        found.append(f"photo: {photo}")
        if not parser:
            missing.append(("parser", "a photo without a mask needs the parser"))
    else:
        what = (f"faces = {faces!r} is not a folder" if faces else f"photo = {photo!r} is not a file" if photo
                else "faces and photo are empty")
        missing.append(("faces", what))
    for line in found:
        report(f"found {line}")
    if not missing:
        return True
    report("\nThis notebook needs files the kit does not ship; the remaining cells will do nothing until "
           "they are there:")
    for key, why in missing:
        report(f"- {why}. Download {DOWNLOADS[key]}")
    report("Then set the paths in the parameters cell (or pass them with papermill -p) and run the notebook again. "
           "Nothing is downloaded by the kit.")
    report("Meanwhile, with nothing to download: `make app` serves the editing page on the kit's shipped SynthFaces "
           "models (pretrained/synthfaces64, at http://127.0.0.1:8866), and notebook 05 opens up their SFT and AdaIN.")
    return False
