"""Real faces in the app: a faces folder (``faces=`` / ``$MASKGAN_FACES``) and uploads.

The app edits the faces of a :class:`~maskgan.widgets.FaceBank`. Besides a dataset split, that can be
a folder of faces (:mod:`maskgan.data.folder`: the authors' ``N.jpg`` + ``N.png`` samples, your own
images with masks) and faces uploaded in the page (:class:`UploadController`): an image with its
mask, or an image alone when the app has a face parser (:mod:`maskgan.photo` crops and parses it).
A bad upload (not an image, a colour mask, ids outside 0..18, no mask and no parser) shows a red
message under the upload buttons, and the app goes on.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Callable

from ..errors import MaskGANError
from .faces import FaceBank

__all__ = ["FACES_ENV", "PARSER_ENV", "resolve_faces", "UploadController", "read_upload"]

_REPO_ROOT = Path(__file__).resolve().parents[2]

#: Environment variable naming a folder of faces for the app (``make app FACES=...`` sets it).
FACES_ENV = "MASKGAN_FACES"
#: Environment variable naming a face parser for the app (a folder with ``face_parsers/`` or a file).
PARSER_ENV = "MASKGAN_PARSER"


def resolve_faces(faces: str | Path | None = None) -> Path | None:
    """The faces folder the app shows: ``faces`` if given, else ``$MASKGAN_FACES``, else None (the
    run's dataset split). A relative path is looked up from the working directory, then from the
    repository root (Voila starts kernels in the notebook's folder)."""
    chosen = faces or os.environ.get(FACES_ENV)
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return _REPO_ROOT / path if (_REPO_ROOT / path).exists() else path


def read_upload(image: bytes, mask: bytes | None, size: int, name: str, parser=None,
                image_name: str = "the uploaded image", mask_name: str = "the uploaded mask",
                margin: float = 0.45) -> dict:
    """An uploaded image (and optional mask) -> a kit item at ``size``. Without a mask the photo is
    cropped around the face (``margin``: see :func:`maskgan.photo.prepare_photo`) and parsed by
    ``parser``; without a parser that is an error saying so."""
    from ..data.folder import open_image, read_face
    from ..errors import DataError
    open_image(image, image_name).close()  # not an image: say so before asking for a mask
    if mask is not None:
        return read_face(image, mask, size, name, image_name=image_name, mask_name=mask_name)
    if parser is None:
        raise DataError(f"{image_name} has no mask, and this app has no face parser to make one: upload its mask "
                        "too (a single-channel PNG of CelebAMask-HQ ids 0..18), or start the app with a parser "
                        "(`python -m maskgan import-weights bisenet 79999_iter.pth --out RUN_DIR`)")
    from ..photo import prepare_photo
    item = prepare_photo(image, parser, size, margin=margin, name=image_name)
    # the photo and its crop box: the mask editor pastes the edit back into the whole photo
    return {"image": item["image"], "label": item["label"], "name": name, "photo": bytes(image), "box": item["box"]}


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an image as a viewer shows it (the kit's one reader), or None when it cannot be read."""
    from ..data.folder import read_rgb
    try:
        return read_rgb(data).size
    except MaskGANError:  # only used for a warning; the upload itself already read the image
        return None


def _covers(box, size: tuple[int, int]) -> bool:
    """Whether a square crop box is as large as the picture allows (its whole short side)."""
    x0, _, x1, _ = box
    return (x1 - x0) >= min(size) - 1


def _file(upload) -> tuple[str, bytes] | None:
    """``(name, bytes)`` of an ipywidgets 8 FileUpload's file, or None."""
    value = upload.value
    if not value:
        return None
    f = value[0]
    return str(f["name"]), bytes(f["content"])


class UploadController:
    """Two file pickers (image; optional mask) and an "add face" button, for a :class:`FaceBank`.

    With a parser, ``margin`` (a slider) sets how much room the automatic crop leaves around the face.
    ``add(image_bytes, mask_bytes=None)`` does what the button does (for notebooks and tests); it
    returns the new face's index, or None after showing why in :attr:`message`. ``on_added(fn)``
    calls ``fn(index)`` for every face added.
    """

    def __init__(self, bank: FaceBank, parser=None, warnings: dict[str, str] | None = None):
        import ipywidgets as w
        self.bank, self.parser = bank, parser
        self.warnings = dict(warnings or {})  # {"generator"/"parser": text}: models trained on SynthFaces
        self.count = 0
        self._listeners: list[Callable[[int], None]] = []
        self.image_upload = w.FileUpload(accept="image/*,.jpg,.jpeg,.png", multiple=False, description="image")
        self.mask_upload = w.FileUpload(accept=".png,image/png", multiple=False,
                                        description="mask (optional)" if parser is not None else "mask (required)")
        self.add_button = w.Button(description="add face", icon="plus", button_style="primary")
        self.margin = w.FloatSlider(value=0.45, min=0.0, max=1.5, step=0.05, description="crop margin",
                                    tooltip="photos without a mask: the square crop around the face grows by "
                                            "this fraction of the face's size on every side",
                                    layout=w.Layout(display="flex" if parser is not None else "none"))
        self.message = w.HTML("")
        for widget, css in ((self.image_upload, "maskgan-upload-image"), (self.mask_upload, "maskgan-upload-mask"),
                            (self.add_button, "maskgan-add-face"), (self.message, "maskgan-upload-message")):
            widget.add_class(css)
        self.add_button.on_click(lambda _b: self._from_widgets())
        mask_note = ("without a mask the photo is cropped around the face and parsed" if parser is not None
                     else "this app has no face parser, so the mask is required")
        self.widget = w.VBox([
            w.HTML("<div class='maskgan-hint' style='font-size:13px;color:#333;margin:4px 0'>Upload a face image "
                   "and its mask (a single-channel PNG of CelebAMask-HQ ids 0..18), then press <b>add face</b>: "
                   f"it opens in the mask editor. {html.escape(mask_note[0].upper() + mask_note[1:])}.</div>"),
            w.HBox([self.image_upload, self.mask_upload, self.add_button, self.margin]),
            self.message,
        ])

    def on_added(self, fn: Callable[[int], None]) -> None:
        self._listeners.append(fn)

    def _say(self, text: str, ok: bool | None) -> None:
        colour = "#1b5e20" if ok else "#b00020" if ok is False else "#8a4b00"  # None: a warning
        self.message.value = f"<div style='color:{colour};font-size:12px'>{html.escape(text)}</div>"

    def _from_widgets(self) -> int | None:
        image, mask = _file(self.image_upload), _file(self.mask_upload)
        if image is None:
            self._say("choose an image first (the 'image' button), then 'add face'", ok=False)
            return None
        index = self.add(image[1], None if mask is None else mask[1], image_name=image[0],
                         mask_name=None if mask is None else mask[0])
        if index is not None:
            self.image_upload.value, self.mask_upload.value = (), ()
        return index

    def add(self, image: bytes, mask: bytes | None = None, image_name: str = "upload.png",
            mask_name: str | None = None) -> int | None:
        """Add an uploaded face to the bank; its index, or None (the reason is in :attr:`message`)."""
        name = f"upload {self.count + 1}: {image_name}"
        try:
            item = read_upload(image, mask, self.bank.size, name, self.parser, image_name=image_name,
                               mask_name=mask_name or "the uploaded mask", margin=float(self.margin.value))
            index = self.bank.add(item)
        except MaskGANError as e:
            self._say(str(e), ok=False)
            return None
        except Exception as e:  # noqa: BLE001 - a bad upload must never break the page
            self._say(f"{image_name} could not be added: {e!r}", ok=False)
            return None
        self.count += 1
        how = "with its mask" if mask is not None else "cropped and parsed"
        cautions = [self.warnings["generator"]] if "generator" in self.warnings else []
        if mask is None:
            if "parser" in self.warnings:
                cautions.append(self.warnings["parser"])
            box, full = item.get("box"), _image_size(image)
            if box is not None and full is not None and _covers(box, full):
                cautions.append(f"the crop box {tuple(box)} is the whole {full[0]}x{full[1]} image: the parser "
                                "found no face to crop around, so the face may be small and off-centre")
        if cautions:
            self._say(f"added {name!r} ({how}), but: " + " ".join(cautions), ok=None)
        else:
            self._say(f"added {name!r} ({how}); it is selected in the mask editor", ok=True)
        for fn in list(self._listeners):
            fn(index)
        return index
