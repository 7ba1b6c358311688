"""The mask editor (paper Sec. 3.3): paint on a face's mask; the face follows, and only what you changed changes.

Every stroke re-renders the face with the style of the original image (cached once per face) and
**composites** the rendering into the original (:mod:`maskgan.composite`, the kit's default edit):
pixels farther than the margin from every changed label keep their own values, so the rest of the
face, and of your photo, stays as it was. A toggle shows the paper's full re-render next to it
(the reproduction: a global style vector cannot reproduce the untouched face), and a blend menu
chooses how to composite.

Save what you made: "save image" writes the edited image (the whole photo, at its full resolution,
when the face came from an uploaded photo: :func:`maskgan.photo.paste_back`) and "save mask" the
edited mask as a label PNG of ids 0..18 (which the kit's folder reader loads back), both into
``runs/edits/`` (or ``$MASKGAN_EDITS``), and each gives a download link in the page.
"""
from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..composite import BLENDS, DEFAULT_BLEND, RERENDER
from ..labels import CLASS_NAMES, PALETTE, colorize
from .edits import ONE_CLICK_EDITS, class_id, paint_stroke, stroke_mask
from .faces import FaceBank
from .frames import frame_png
from .ui import FramePanel, captioned, hex_colour

__all__ = ["MaskEditorController", "BLEND_CHOICES", "EDITS_ENV", "edits_dir"]

#: Environment variable naming the folder the app saves edits into (default ``runs/edits``).
EDITS_ENV = "MASKGAN_EDITS"
_REPO_ROOT = Path(__file__).resolve().parents[2]
#: The blend menu: (label, blend) pairs, the default first.
BLEND_CHOICES: list[tuple[str, str]] = [
    ("keep the rest: Poisson blend", "poisson"), ("keep the rest: feathered", "feather"),
    ("keep the rest: Laplacian pyramid", "laplacian"), ("keep the rest: hard paste", "hard"),
    ("paper: re-render the whole face", RERENDER)]
assert {b for _, b in BLEND_CHOICES} == set(BLENDS) | {RERENDER} and BLEND_CHOICES[0][1] == DEFAULT_BLEND
#: The blend of preview frames (while the mouse drags): the cheapest one that keeps the rest.
PREVIEW_BLEND = "feather"


def edits_dir() -> Path:
    """Where the app saves edits: ``$MASKGAN_EDITS``, else ``runs/edits`` under the repository."""
    return Path(os.environ.get(EDITS_ENV) or (_REPO_ROOT / "runs" / "edits")).expanduser()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "face"


def _png(image) -> bytes:
    import io
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class MaskEditorController(FramePanel):
    """Paint on a face's label map; every stroke re-renders the face in its original style and
    composites it into the face (``blend``: the :data:`BLEND_CHOICES` menu, default
    :data:`~maskgan.composite.DEFAULT_BLEND`; ``"rerender"`` is the paper's whole-face edit).

    Widgets: ``face`` (dropdown), ``brush_class`` (dropdown of the 19 classes, also set by the
    colour ``palette`` buttons), ``brush_size`` (radius in label pixels), ``canvas`` (ipycanvas:
    drag to paint), ``undo_button``, ``reset_button``, one button per one-click edit in
    ``edit_buttons`` (:data:`~maskgan.widgets.edits.ONE_CLICK_EDITS`) and ``donor`` (the face whose
    hair "hair from other face" takes). State: ``label`` (H x W uint8 numpy), ``image_png``.

    Painting stays responsive on big models: while the mouse drags, frames are *previews*
    (:meth:`~maskgan.editing.Editor.render_preview`: the mask at ``1/preview_factor`` of its size,
    upsampled), and the full frame follows when the stroke ends. ``preview_factor=None`` picks 2 for
    faces of 256 px and more (the authors' 512² model: a quarter of the cost) and 1 (no preview)
    below; strokes, edits and undo from Python always render full frames. ``last_frame`` says which
    kind is displayed (``"preview"`` or ``"full"``); ``previews`` counts preview frames. Previews
    composite with the fast feathered blend; the full frame with the chosen one.

    ``show_rerender`` (a checkbox) shows the paper's full re-render next to the edit; ``composite``
    is the last full frame's :class:`~maskgan.composite.Composite`. :meth:`save_image` and
    :meth:`save_mask` do what the save buttons do; :meth:`edited_image` is the image they save.
    """

    MAX_UNDO = 100

    def __init__(self, editor, bank: FaceBank, threaded: bool = True, display_px: int = 256, face: int = 0,
                 brush_class: int | str = "skin", brush_size: int = 2, donor: int = 1,
                 render_threads: int | None = 1, preview_factor: int | None = None, blend: str = DEFAULT_BLEND,
                 show_rerender: bool = False):
        import ipywidgets as w
        from ipycanvas import Canvas

        from ..composite import check_blend
        super().__init__(editor, bank, threaded, display_px, render_threads)
        check_blend(blend)
        self.composite = None  # the last full frame's Composite
        self._links: dict[str, tuple[str, str, str]] = {}
        self._frame_state = None  # (face index, label) of that frame
        size = bank.size
        if preview_factor is None:
            preview_factor = 2 if size >= 256 else 1
        fits = getattr(editor, "preview_fits", None)
        self.preview_factor = int(preview_factor) if (fits is None or fits(size, int(preview_factor))) else 1
        self.last_frame: str | None = None
        self.previews = 0
        self._previewed = False  # a preview is showing: the stroke's end renders the full frame
        px = size * self.scale
        self._history: list[np.ndarray] = []
        self._stroke: list[tuple[float, float]] | None = None
        self._label_listeners: list[Callable[[], None]] = []

        self.face = w.Dropdown(options=bank.options, value=bank.index(face), description="face")
        self.brush_class = w.Dropdown(options=[(f"{i:2d} {n}", i) for i, n in enumerate(CLASS_NAMES)],
                                      value=class_id(brush_class), description="class")
        self.brush_size = w.IntSlider(value=brush_size, min=0, max=max(8, size // 8), description="brush",
                                      tooltip="brush radius in mask pixels")
        self.palette = w.GridBox([self._swatch(i) for i in range(len(CLASS_NAMES))],
                                 layout=w.Layout(grid_template_columns="repeat(5, 88px)", grid_gap="2px"))
        self.swatch = w.HTML("")
        self.canvas = Canvas(width=px, height=px, layout=w.Layout(width=f"{px}px", height=f"{px}px"))
        self.undo_button = w.Button(description="undo", icon="undo")
        self.reset_button = w.Button(description="reset", icon="refresh")
        self.donor = w.Dropdown(options=bank.options, value=bank.other(donor),
                                description="hair from")
        self.edit_buttons = {name: w.Button(description=name, layout=w.Layout(width="160px"))
                             for name in ONE_CLICK_EDITS}
        self.original_image, self.image, self.rerender_image = self._image(), self._image(), self._image()
        self.blend = w.Dropdown(options=BLEND_CHOICES, value=blend, description="edit",
                                tooltip="how the rendering becomes the edit (docs/editing.md)")
        self.show_rerender = w.Checkbox(value=bool(show_rerender), description="show the paper's full re-render",
                                        indent=False)
        self.save_image_button = w.Button(description="save image", icon="download",
                                          tooltip="the edited image (the whole photo when the face came from one)")
        self.save_mask_button = w.Button(description="save mask", icon="download",
                                         tooltip="the edited mask: a PNG of ids 0..18 that the kit reads back")
        self.downloads = w.HTML("")
        self.save_image_button.on_click(lambda _b: self._save_clicked("image"))
        self.save_mask_button.on_click(lambda _b: self._save_clicked("mask"))
        self.blend.observe(lambda _c: self._changed(), names="value")
        self.show_rerender.observe(self._on_show_rerender, names="value")

        self.undo_button.on_click(lambda _b: self.undo())
        self.reset_button.on_click(lambda _b: self.reset())
        for name, button in self.edit_buttons.items():
            button.on_click(lambda _b, name=name: self.apply_edit(name))
        self.face.observe(self._on_face, names="value")
        self.brush_class.observe(lambda _c: self._show_swatch(), names="value")
        for widget, css in ((self.canvas, "maskgan-editor-canvas"), (self.image, "maskgan-editor-image"),
                            (self.face, "maskgan-editor-face"), (self.save_image_button, "maskgan-save-image"),
                            (self.save_mask_button, "maskgan-save-mask"), (self.downloads, "maskgan-downloads"),
                            (self.show_rerender, "maskgan-show-rerender"), (self.blend, "maskgan-blend"),
                            (self.rerender_image, "maskgan-rerender-image")):
            widget.add_class(css)  # stable handles for browser tests
        self.canvas.on_mouse_down(self._mouse_down)
        self.canvas.on_mouse_move(self._mouse_move)
        self.canvas.on_mouse_up(self._mouse_up)
        self.canvas.on_mouse_out(self._mouse_up)
        # Draw only once a browser view exists: commands sent before are lost (ipycanvas replays
        # nothing), and the frontend says "client ready" for every new view.
        self._client_ready = False
        self.canvas.on_client_ready(self._on_client_ready)

        self._rerender_box = captioned(self.rerender_image, "the paper: whole face re-rendered")
        self._rerender_box.layout.display = "flex" if show_rerender else "none"
        self.widget = w.VBox([
            w.HTML("<div class='maskgan-hint'>Drag on the mask to paint with the chosen class; the edited face "
                   "follows, and only what you changed changes. Try a one-click edit below.</div>"),
            w.HBox([captioned(self.canvas, "mask (drag to paint)"), captioned(self.image, "edited face"),
                    self._rerender_box, captioned(self.original_image, "original")]),
            w.HBox([self.face, self.brush_class, self.swatch]),
            self.palette,
            w.HBox([self.brush_size, self.undo_button, self.reset_button]),
            w.HBox([*self.edit_buttons.values(), self.donor]),
            w.HBox([self.blend, self.show_rerender]),
            w.HBox([self.save_image_button, self.save_mask_button, self.downloads]),
            self.status,
        ])
        self._show_swatch()
        self._load_face()
        self.wait(60)

    # --- widgets ------------------------------------------------------------------------------
    def _swatch(self, cid: int):
        import ipywidgets as w
        rgb = PALETTE[cid]
        text = "white" if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 128 else "black"
        b = w.Button(description=CLASS_NAMES[cid], tooltip=f"paint with class {cid} {CLASS_NAMES[cid]}",
                     layout=w.Layout(width="88px", height="24px"))
        b.style.button_color = hex_colour(rgb)
        b.style.text_color = text
        b.on_click(lambda _b: setattr(self.brush_class, "value", cid))
        return b

    def _show_swatch(self) -> None:
        cid = int(self.brush_class.value)
        self.swatch.value = (f"<span style='display:inline-block;width:22px;height:22px;vertical-align:middle;"
                             f"border:1px solid #555;background:{hex_colour(PALETTE[cid])}'></span>")

    # --- state ----------------------------------------------------------------------------
    @property
    def label(self) -> np.ndarray:
        """The current (edited) label map, H x W uint8 (a copy)."""
        return self._label.copy()

    @property
    def original_label(self) -> np.ndarray:
        """The face's own label map, before any edit (a copy)."""
        return self._original.copy()

    @property
    def image_png(self) -> bytes:
        """PNG bytes of the displayed rendering of the edited mask."""
        return self.image.value

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    def on_label_change(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` whenever the edited label map changes (strokes, edits, undo, face); while a
        stroke is previewed, once when it ends."""
        self._label_listeners.append(fn)

    def _load_face(self) -> None:
        face = self.bank[int(self.face.value)]
        self._original = face["label"].numpy().astype(np.uint8)
        self._label = self._original.copy()
        self._history.clear()
        self.original_image.value = frame_png(face["image"], self.scale)
        self._redraw()
        self._changed()

    def _on_face(self, _change=None) -> None:
        self._stroke = None
        self._load_face()

    def _push_history(self) -> None:
        self._history.append(self._label.copy())
        del self._history[:-self.MAX_UNDO]

    def _set_label(self, new: np.ndarray, redraw: np.ndarray | None = None, preview: bool = False) -> None:
        """Install ``new``; repaint only the ``redraw`` pixels on the canvas (all when None)."""
        self._label = new
        if redraw is None:
            self._redraw()
        else:
            self._draw_pixels(redraw)
        self._changed(preview)

    def _changed(self, preview: bool = False) -> None:
        preview = preview and self.preview_factor > 1
        self._previewed = preview
        self._queue.request((int(self.face.value), self._label.copy(), preview))
        if preview:  # listeners (the style-copy tab) hear of the stroke when it ends: their full frames
            return   # would hold the editor's lock and stall the previews
        for fn in list(self._label_listeners):
            fn()

    # --- canvas ---------------------------------------------------------------------------
    def _on_client_ready(self, *_args) -> None:
        self._client_ready = True
        self._redraw()

    def _redraw(self, *_args) -> None:
        from ipycanvas import hold_canvas
        if not self._client_ready:
            return
        rgb = colorize(self._label)
        s = self.scale
        with hold_canvas():
            self.canvas.put_image_data(np.repeat(np.repeat(rgb, s, axis=0), s, axis=1), 0, 0)

    def _draw_pixels(self, changed: np.ndarray) -> None:
        from ipycanvas import hold_canvas
        ys, xs = np.nonzero(changed)
        if len(xs) == 0 or not self._client_ready:
            return
        s = self.scale
        with hold_canvas():
            for cid in np.unique(self._label[ys, xs]):
                sel = self._label[ys, xs] == cid
                self.canvas.fill_style = hex_colour(PALETTE[cid])
                self.canvas.fill_rects(xs[sel] * s, ys[sel] * s, s, s)

    def _to_label_xy(self, x: float, y: float) -> tuple[float, float]:
        # Canvas pixel x covers label column floor(x / scale), whose centre is column + 0.5.
        return x / self.scale - 0.5, y / self.scale - 0.5

    def _mouse_down(self, x, y) -> None:
        p = self._to_label_xy(x, y)
        self._stroke = [p]
        self.apply_stroke([p], preview=True)

    def _mouse_move(self, x, y) -> None:
        if self._stroke is None:
            return
        p = self._to_label_xy(x, y)
        self.apply_stroke([self._stroke[-1], p], new_stroke=False, preview=True)
        self._stroke.append(p)

    def _mouse_up(self, *_args) -> None:
        self._stroke = None
        if self._previewed:  # the stroke ended on a preview: render the full frame
            self._changed()

    # --- edits ----------------------------------------------------------------------------
    def apply_stroke(self, points, cls: int | str | None = None, radius: float | None = None,
                     new_stroke: bool = True, preview: bool = False) -> np.ndarray:
        """Paint the polyline ``points`` (label-pixel ``(x, y)``) with the brush (or ``cls``/``radius``).

        ``new_stroke=True`` starts a new undo step; ``False`` extends the current one (mouse drags).
        ``preview=True`` renders a preview frame (the stroke goes on; :meth:`end_stroke` renders the
        full one). Returns the boolean mask of the pixels that changed.
        """
        cid = int(self.brush_class.value) if cls is None else class_id(cls)
        r = float(self.brush_size.value) if radius is None else float(radius)
        covered = stroke_mask(self._label.shape, points, r)
        changed = covered & (self._label != cid)
        if new_stroke:
            self._push_history()
        if changed.any():
            self._set_label(paint_stroke(self._label, points, cid, r), redraw=changed, preview=preview)
        return changed

    def end_stroke(self) -> None:
        """The stroke is over (the mouse is up): render the full frame if a preview is showing."""
        self._mouse_up()

    def apply_edit(self, name: str) -> np.ndarray:
        """Apply a one-click edit (a key of :data:`ONE_CLICK_EDITS`); returns the changed pixels."""
        if name not in ONE_CLICK_EDITS:
            raise ValueError(f"unknown one-click edit {name!r}; available: {', '.join(ONE_CLICK_EDITS)}")
        donor = self.bank[int(self.donor.value)]["label"].numpy().astype(np.uint8)
        if donor.shape != self._label.shape:  # pragma: no cover - one bank has one size
            raise ValueError(f"donor mask {donor.shape} and edited mask {self._label.shape} differ in size")
        new = ONE_CLICK_EDITS[name](self._label, donor).astype(np.uint8)
        changed = new != self._label
        self._push_history()
        if changed.any():
            self._set_label(new, redraw=changed)
        return changed

    def undo(self) -> bool:
        """Go back one stroke / edit / reset; False when there is nothing to undo."""
        if not self._history:
            return False
        self._stroke = None
        self._set_label(self._history.pop())
        return True

    def reset(self) -> None:
        """Back to the face's own mask (undoable)."""
        self._stroke = None
        self._push_history()
        self._set_label(self._original.copy())

    def _on_show_rerender(self, change) -> None:
        self._rerender_box.layout.display = "flex" if change["new"] else "none"
        self._changed()

    def _render_state(self, state) -> None:
        index, label, preview = state
        face = self.bank[index]
        mask = torch.from_numpy(label.astype(np.int64))
        blend = self.blend.value
        if preview and blend not in (RERENDER, "hard"):
            blend = PREVIEW_BLEND  # the stroke goes on: the fast blend (the full frame uses the chosen one)
        with self._lock:
            style = self._style(index)
            if preview:
                render = self.editor.render_preview(mask, style, self.preview_factor)
            else:
                render = self.editor.render(mask, style)
            comp = self.editor.composite(face["image"], face["label"], mask, blend=blend, render=render)
        self.image.value = frame_png(comp.image, self.scale)
        if self.show_rerender.value:
            self.rerender_image.value = frame_png(render, self.scale)
        if not preview:
            self.composite, self._frame_state = comp, (index, label)
        self.last_frame = "preview" if preview else "full"
        self.previews += bool(preview)
        self._frame_done()

    # --- save ---------------------------------------------------------------------------------
    def _current_composite(self):
        """The full frame of the current face and mask (waiting for it when one is on its way)."""
        if not self.wait(120):
            raise TimeoutError("the current frame is still rendering; try again")
        index, label = int(self.face.value), self._label
        if self.composite is None or self._frame_state is None or self._frame_state[0] != index \
                or not np.array_equal(self._frame_state[1], label):
            self._render_state((index, label.copy(), False))
        return self.composite

    def edited_image(self):
        """The edited image as a PIL RGB image: the whole photo, at its full resolution, when the face
        came from a photo (its bank item has ``"photo"`` and ``"box"``), else the face at the model's size."""
        from PIL import Image

        from ..photo import paste_back
        from ..viz import as_rgb
        comp = self._current_composite()
        face = self.bank[int(self.face.value)]
        if face.get("photo") is not None and face.get("box") is not None:
            return paste_back(face["photo"], face["box"], comp, face["name"])
        return Image.fromarray(np.ascontiguousarray(as_rgb(comp.image)))

    def _target(self, kind: str, path) -> Path:
        if path is not None:
            return Path(path)
        name = _slug(self.bank[int(self.face.value)]["name"])
        return edits_dir() / f"{name}_{'edited' if kind == 'image' else 'mask'}.png"

    def save_image(self, path=None) -> Path:
        """Write :meth:`edited_image` as a PNG (``path``, else ``runs/edits/<face>_edited.png``)."""
        from ..photo import _save_image
        return _save_image(self.edited_image(), self._target("image", path))

    def save_mask(self, path=None) -> Path:
        """Write the edited mask as a single-channel PNG of ids 0..18 (``path``, else
        ``runs/edits/<face>_mask.png``): the kit's folder reader loads it back as a mask."""
        from ..photo import save_label_png
        return save_label_png(self._label, self._target("mask", path))

    def _save_clicked(self, kind: str) -> None:
        from ..errors import MaskGANError
        try:
            path = self.save_image() if kind == "image" else self.save_mask()
        except (MaskGANError, OSError, TimeoutError) as e:
            self.status.value = f"<span style='color:#b00020'>could not save the {kind}: {html.escape(str(e))}</span>"
            return
        self._links[kind] = (path.name, base64.b64encode(path.read_bytes()).decode("ascii"), str(path))
        links = [f"<a download='{html.escape(n)}' href='data:image/png;base64,{b}' class='maskgan-download-{k}' "
                 f"title='{html.escape(where)}'>download {html.escape(n)}</a>"
                 for k, (n, b, where) in self._links.items()]
        self.downloads.value = ("<span style='font-size:12px'>saved in " + html.escape(str(path.parent)) + ": "
                                + " &middot; ".join(links) + "</span>")
