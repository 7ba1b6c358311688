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

After the edit, :func:`paste_back` puts the edited face back into the **original photo at its full
resolution**: only the edited region changes (the edit's alpha, :mod:`maskgan.composite`, upsampled
bilinearly from the crop to the box), every other pixel keeps the photo's own value, and the result
has the photo's size and orientation. :func:`edit_photo` does the whole round trip in one call::

    result = edit_photo("me.jpg", editor, parser, edit=close_mouth, out="me_edited.png")

How far this is from CelebA-HQ: CelebA-HQ aligns every face by five landmarks (eyes, nose, mouth
corners), *rotates* it upright and scales it so the eye-to-mouth distance is fixed, then crops.
This crop neither rotates nor normalises the eye-mouth distance; a tilted or off-centre face stays
tilted and off-centre, and the DMN, trained on aligned faces only, renders such faces worse
(textures smear, features drift toward where aligned faces have them). Frontal, upright photos
work best. The README section "Edit real faces with the authors' weights" says the same.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from .composite import Composite
from .data.folder import RESAMPLE, FolderFaces, as_rgb, read_rgb
from .data.tensors import image_to_tensor
from .errors import DataError, DataMissing, StageMissing
from .labels import CLASS_IDS

__all__ = ["FACE_CLASSES", "face_box", "square_box", "crop_photo", "prepare_photo", "open_faces", "load_parser",
           "PhotoParser", "DOWNLOADS", "real_face_inputs", "read_photo", "paste_back", "edit_photo", "PhotoEdit",
           "save_label_png"]

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
    a ``width x height`` picture and shrunk to fit it when needed. A box that does not overlap the
    picture at all, a non-finite value or a negative ``margin`` is an error."""
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise DataError(f"margin must be a number >= 0 (a fraction of the face box), got {margin!r}")
    try:
        left, top, right, bottom = (float(v) for v in box)
    except (TypeError, ValueError):
        raise DataError(f"crop box {box!r} is not four numbers (left, top, right, bottom) in photo pixels") from None
    if not all(math.isfinite(v) for v in (left, top, right, bottom)):
        raise DataError(f"crop box {tuple(box)} has a value that is not a finite number")
    if not (right > left and bottom > top):
        raise DataError(f"crop box {tuple(box)} is empty; expected (left, top, right, bottom) with right > left "
                        "and bottom > top, in photo pixels")
    if right <= 0 or bottom <= 0 or left >= width or top >= height:
        raise DataError(f"crop box {tuple(box)} lies outside the {width}x{height} photo; give (left, top, right, "
                        f"bottom) in its pixels, with 0 <= left < {width} and 0 <= top < {height}")
    side = min(max(right - left, bottom - top) * (1 + 2 * margin), width, height)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    s = int(round(side))
    x0, y0 = int(round(x0)), int(round(y0))
    return x0, y0, min(x0 + s, width), min(y0 + s, height)


def _as_pil(photo, name: str) -> Image.Image:
    """The photo as shown (:func:`maskgan.data.folder.read_rgb`: EXIF orientation, 16-bit, alpha), 8-bit RGB."""
    if isinstance(photo, Image.Image):
        return as_rgb(photo, name)
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise DataError(f"{name}: expected a uint8 H x W x 3 RGB array, got {photo.dtype} {photo.shape}")
        return Image.fromarray(photo)
    if not isinstance(photo, (str, Path, bytes, bytearray)):
        raise DataError(f"{name}: expected a file path, bytes, a PIL image or a uint8 H x W x 3 array, "
                        f"got {type(photo).__name__}")
    return read_rgb(photo, name)


def _to_tensor(im: Image.Image, size: int, resample: str = "lanczos") -> torch.Tensor:
    if im.size != (size, size):
        im = im.resize((size, size), RESAMPLE[resample])
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


def prepare_photo(photo, parser, size: int, box=None, margin: float = 0.45, name: str = "photo",
                  resample: str = "lanczos") -> dict:
    """A photo (path, bytes, PIL image or uint8 array; read as shown, EXIF orientation applied) ->
    ``{"image", "label", "name", "box"}`` for the :class:`~maskgan.editing.Editor`: face crop
    (automatic, or ``box`` in photo pixels, made square), resized to ``size`` with ``resample``
    (``"lanczos"``, or ``"bicubic"`` as the authors' demo), parsed by ``parser`` (see the module docstring)."""
    if resample not in RESAMPLE:
        raise DataError(f"resample must be one of {', '.join(RESAMPLE)}, got {resample!r}")
    if parser is None:
        raise DataError(f"{name} has no mask, and no face parser was given to make one: import one "
                        "(`python -m maskgan import-weights bisenet 79999_iter.pth --out DIR`) and pass "
                        "parser=maskgan.photo.load_parser(DIR), or add the mask (a single-channel PNG of ids 0..18)")
    im = _as_pil(photo, name)
    if box is None:
        box = crop_photo(im, parser, size, margin, name)
    else:
        box = square_box(box, *im.size, margin=0.0)
    image = _to_tensor(im.crop(box), size, resample)
    return {"image": image, "label": _parse(parser, image), "name": str(name), "box": tuple(int(v) for v in box)}


class PhotoParser:
    """``photo(pil_image, size, name) -> item``: the hook :class:`~maskgan.data.folder.FolderFaces` calls
    for images without a mask (automatic face crop, then parse)."""

    def __init__(self, parser, margin: float = 0.45, resample: str = "lanczos"):
        self.parser, self.margin, self.resample = parser, margin, resample

    def __call__(self, im: Image.Image, size: int, name: str = "photo") -> dict:
        return prepare_photo(im, self.parser, size, margin=self.margin, name=name, resample=self.resample)


def open_faces(folder, size: int, parser=None, margin: float = 0.45, resample: str = "lanczos") -> FolderFaces:
    """The faces of ``folder`` (see :mod:`maskgan.data.folder`); images without a mask are cropped
    and parsed by ``parser`` (a path for :func:`load_parser`, or a loaded parser). ``resample``:
    ``"lanczos"`` (the kit's) or ``"bicubic"`` (the authors' demo's, for their imported generator)."""
    if isinstance(parser, (str, Path)):
        parser = load_parser(parser)
    photo = PhotoParser(parser, margin, resample) if parser is not None else None
    return FolderFaces(folder, size, photo=photo, resample=resample)


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


# --- your photo back, whole ---------------------------------------------------------------------

def read_photo(photo, name: str = "photo") -> np.ndarray:
    """A photo (path, bytes, PIL image or uint8 array) as the uint8 ``H x W x 3`` RGB array a viewer
    shows: the kit's one image reader (:func:`maskgan.data.folder.read_rgb`) for files and bytes."""
    return np.asarray(_as_pil(photo, name), dtype=np.uint8)


def _box_side(box) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 - x0 != y1 - y0 or x1 <= x0:
        raise DataError(f"paste_back needs the square crop box prepare_photo returned, got {tuple(box)}")
    return x0, y0, x1, y1


def paste_back(photo, box, edit: Composite, name: str = "photo") -> Image.Image:
    """Paste an edited crop back into the full-resolution photo it was cut from.

    ``photo``: the original (path, bytes, PIL image or uint8 array; read as a viewer shows it);
    ``box``: the square crop box ``(left, top, right, bottom)`` in photo pixels (``prepare_photo``'s
    ``"box"``); ``edit``: the :class:`~maskgan.composite.Composite` of one face at the model's size
    (:meth:`maskgan.editing.Editor.composite`). Its ``alpha`` is upsampled bilinearly to the box and
    its ``layer`` bicubically; inside the box ``out = alpha * layer + (1 - alpha) * photo``, rounded
    to 8 bits, where alpha > 0. Every pixel where the upsampled alpha is 0 (all of the photo outside
    the edited region) is the photo's own value, bit for bit. Returns a PIL RGB image of the photo's
    size (save it as PNG to keep those pixels exact; JPEG re-encodes every pixel)."""
    import torch.nn.functional as F
    if isinstance(photo, np.ndarray) and photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3:
        pixels = photo  # already the displayed pixels (edit_photo reads the file once)
    else:
        pixels = read_photo(photo, name)
    x0, y0, x1, y1 = _box_side(box)
    h, w = pixels.shape[:2]
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise DataError(f"{name}: crop box {tuple(box)} reaches outside the {w}x{h} photo")
    alpha, layer = edit.alpha, edit.layer
    if alpha.dim() != 2 or layer.dim() != 3:
        raise DataError("paste_back takes the Composite of one face (alpha H x W, layer 3 x H x W); index a batch first")
    side, size = x1 - x0, int(alpha.shape[-1])
    out = pixels.copy()
    support = torch.nonzero(alpha > 0)
    if not len(support):
        return Image.fromarray(out)
    # only the photo pixels that can see a crop pixel with alpha > 0 (bilinear: +-1 crop pixel)
    scale = side / size
    lo_r, hi_r = (int(support[:, 0].min()) - 1) * scale, (int(support[:, 0].max()) + 2) * scale
    lo_c, hi_c = (int(support[:, 1].min()) - 1) * scale, (int(support[:, 1].max()) + 2) * scale
    r0, r1 = max(0, int(math.floor(lo_r))), min(side, int(math.ceil(hi_r)))
    c0, c1 = max(0, int(math.floor(lo_c))), min(side, int(math.ceil(hi_c)))
    # the crop coordinate of photo pixel p (pixel centres, as F.interpolate with align_corners=False)
    # is (p + 0.5) / scale - 0.5; grid_sample's normalised coordinate is then (p + 0.5) / side * 2 - 1
    ys = (torch.arange(r0, r1, dtype=torch.float64) + 0.5) / side * 2 - 1
    xs = (torch.arange(c0, c1, dtype=torch.float64) + 0.5) / side * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None].float()

    def sample(x, mode):
        return F.grid_sample(x[None].float().cpu(), grid, mode=mode, padding_mode="border", align_corners=False)[0]

    a = sample(alpha[None], "bilinear")[0]
    lay = ((sample(layer, "bicubic").clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0)
    window = out[y0 + r0:y0 + r1, x0 + c0:x0 + c1]
    crop = torch.from_numpy(window.astype(np.float32))
    mixed = (a[..., None] * lay + (1 - a[..., None]) * crop).round().clamp(0, 255).to(torch.uint8).numpy()
    sel = (a > 0).numpy()
    window[sel] = mixed[sel]
    return Image.fromarray(out)


class PhotoEdit(NamedTuple):
    """What :func:`edit_photo` made: ``photo`` (the whole edited photo, PIL RGB, the input's size),
    ``face`` (the crop, its mask and ``box``, from :func:`prepare_photo`), ``edited_label`` (the edited
    mask at the model's size), ``composite`` (the edit at the model's size), ``seconds`` (per step)."""
    photo: Image.Image
    face: dict
    edited_label: torch.Tensor
    composite: Composite
    seconds: dict


def _edited_label(edit, label: torch.Tensor) -> torch.Tensor:
    from .brush import _label_array
    if callable(edit):
        new = edit(label.numpy().astype(np.uint8))
    elif isinstance(edit, str):
        from .widgets.edits import ONE_CLICK_EDITS
        if edit not in ONE_CLICK_EDITS or edit == "hair from other face":
            usable = [k for k in ONE_CLICK_EDITS if k != "hair from other face"]
            raise DataError(f"unknown one-click edit {edit!r} for a photo; use one of {', '.join(usable)}, a "
                            "function label -> edited label, or an edited label map")
        new = ONE_CLICK_EDITS[edit](label.numpy().astype(np.uint8), None)
    else:
        new = edit
    new = torch.from_numpy(_label_array(new, "edited label map").astype(np.int64))
    if new.shape != label.shape:
        raise DataError(f"the edited label map is {tuple(new.shape)} but the face's mask is {tuple(label.shape)} "
                        "(the model's size); edit the mask prepare_photo returned")
    return new


def edit_photo(photo, editor, parser, edit, *, box=None, margin: float = 0.45, blend: str | None = None,
               out=None, name: str | None = None) -> PhotoEdit:
    """A photo in, the edited photo out, at its full resolution (see the module docstring).

    ``editor``: an :class:`~maskgan.editing.Editor`; ``parser``: a face parser (see
    :func:`prepare_photo`); ``edit``: what to do to the face's mask: a function ``label (H x W uint8)
    -> edited label``, the name of a one-click edit (``"close mouth"``, ``"remove glasses"``), or an
    edited label map at the model's size. ``box`` / ``margin``: the crop (see :func:`prepare_photo`);
    ``blend``: the compositing method (default: the kit's, :data:`maskgan.composite.DEFAULT_BLEND`).
    ``out``: also save the photo there (PNG keeps the unedited pixels exact), written atomically."""
    import time
    from .composite import DEFAULT_BLEND
    name = name or (str(photo) if isinstance(photo, (str, Path)) else "photo")
    size = int(editor.cfg.data.size) if getattr(editor, "cfg", None) is not None else None
    if size is None:
        raise DataError("edit_photo needs an Editor with a config (Editor.from_run) to know the model's image size")
    seconds = {}
    t = time.perf_counter()
    pixels = read_photo(photo, name)
    face = prepare_photo(pixels, parser, size, box=box, margin=margin, name=name)
    seconds["prepare"] = time.perf_counter() - t
    edited = _edited_label(edit, face["label"])
    t = time.perf_counter()
    comp = editor.composite(face["image"], face["label"], edited, blend=blend or DEFAULT_BLEND)
    seconds["edit"] = time.perf_counter() - t
    t = time.perf_counter()
    result = paste_back(pixels, face["box"], comp, name)
    seconds["paste_back"] = time.perf_counter() - t
    if out is not None:
        _save_image(result, out)
    return PhotoEdit(result, face, edited, comp, seconds)


def _save_image(im: Image.Image, path) -> Path:
    """Write an image atomically (format from the suffix); errors name the path."""
    import os
    import tempfile
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"cannot save {path}: expected a .png (exact) or .jpg file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                im.save(f, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise DataError(f"cannot save {path}: {e.strerror or e}") from None
    return path


def save_label_png(label, path) -> Path:
    """Save a label map as a single-channel PNG of ids 0..18 (what the kit's folder reader loads back
    as a mask), atomically."""
    from .brush import _label_array
    arr = _label_array(label, "label map").astype(np.uint8)
    return _save_image(Image.fromarray(arr), path)
