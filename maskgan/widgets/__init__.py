"""Interactive face editing in Jupyter and Voila (paper Sec. 3.2 interpolation, Sec. 3.3 editing).

MaskGAN edits a face through its semantic mask: the Dense Mapping Network renders an edited mask
``M^src`` in the style of the original pair ``(I^t, M^t)``. The style (AdaIN parameters) depends
only on the original, so the :class:`~maskgan.editing.Editor` computes it once per face (cache key:
the face's name) and every later frame -- a brush stroke, a slider step -- runs only the backbone
and a PNG encoding (``python -m maskgan bench --only frames`` measures it).

Public API (stable names: notebook 05 and ``notebooks/app.ipynb`` use them)::

    from maskgan.widgets import interpolation_widget, mask_editor, style_copy_widget, editing_app

    ui, ctl = interpolation_widget(editor, dataset)   # two faces, t in [-1, 2], play button
    ui, ctl = mask_editor(editor, dataset)            # paint classes, undo, reset, one-click edits
    ui, ctl = style_copy_widget(editor, dataset)      # the current mask in a reference face's style
    ui, app = editing_app("runs/demo")                # all three in tabs, loaded from a run directory
    ui, app = editing_app("runs/authors", faces="samples/", parser="runs/authors")  # real faces + uploads
    app_page()                                        # what the Voila page shows (or how to train first)

Each ``*_widget`` function returns ``Panel(widget, controller)`` (it displays as the widget when it is a
cell's last expression): display the widget, drive and read the
controller (``ctl.slider.value = 0.4``, ``ctl.apply_stroke([(10, 12), (20, 12)])``,
``ctl.image_png``, ``ctl.label``). ``editor`` is an :class:`~maskgan.editing.Editor`; ``dataset`` is
any kit dataset (``maskgan.data.build_dataset(cfg.data, "val")``) or a :class:`FaceBank`.

Pure helpers (no widgets, no browser; numpy label maps in, new label maps out):

* :func:`paint_stroke` ``(label, points, cls, radius) -> label`` and :func:`stroke_mask`;
* one-click edits :func:`close_mouth`, :func:`remove_glasses`, :func:`remove_class`,
  :func:`swap_hair` / :func:`transplant_class` (collected in :data:`ONE_CLICK_EDITS`);
* :func:`ebst_marks` ``(lambda_inter) -> {"z^outer": -1/lambda, "z^inter": +1/lambda}``: where
  EBST's simulated edits (Algorithm 1) lie on the interpolation slider (+-0.4 for lambda = 2.5);
* :func:`frame_png` (image or label map -> PNG bytes) and :class:`LatestOnly` (the render queue
  that drops stale frames, so a fast slider never queues work).

Serve the app standalone with ``make app`` (Voila on localhost, run directory from
``$MASKGAN_RUN_DIR`` or ``runs/demo``; ``make app FACES=DIR`` shows the faces of a folder, from
``$MASKGAN_FACES``, see :mod:`maskgan.data.folder`); ``python -m maskgan.widgets check [RUN_DIR]
[--faces DIR]`` says whether a run is ready and what to train first. The app's "Your own face" box
takes uploads (:class:`~maskgan.widgets.uploads.UploadController`).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .edits import (ONE_CLICK_EDITS, class_id, close_mouth, paint_stroke, remove_class, remove_glasses,
                    stroke_mask, swap_hair, transplant_class)
from .faces import DEFAULT_RUN_DIR, RUN_DIR_ENV, FaceBank, resolve_run_dir, run_status
from .frames import PNG_SIGNATURE, LatestOnly, display_scale, ebst_marks, frame_png
from .uploads import FACES_ENV, PARSER_ENV, resolve_faces

__all__ = [
    "interpolation_widget", "mask_editor", "style_copy_widget", "editing_app", "app_page", "EditingApp", "Panel",
    "InterpolationController", "MaskEditorController", "StyleCopyController", "FaceBank",
    "stroke_mask", "paint_stroke", "close_mouth", "remove_class", "remove_glasses", "transplant_class",
    "swap_hair", "ONE_CLICK_EDITS", "class_id", "ebst_marks", "frame_png", "display_scale", "PNG_SIGNATURE",
    "LatestOnly", "resolve_run_dir", "run_status", "RUN_DIR_ENV", "DEFAULT_RUN_DIR", "FACES_ENV", "PARSER_ENV",
    "resolve_faces", "UploadController",
]


def __getattr__(name):
    # The controllers import ipywidgets/ipycanvas; load them only when asked for.
    if name in ("InterpolationController", "MaskEditorController", "StyleCopyController"):
        from . import ui
        return getattr(ui, name)
    if name == "UploadController":
        from .uploads import UploadController
        return UploadController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Panel(NamedTuple):
    """``(widget, controller)`` as returned by the ``*_widget`` functions. Unpack it
    (``ui, ctl = interpolation_widget(...)``) or leave it as a cell's last expression: it displays
    as its widget."""
    widget: object
    controller: object

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def _bank(dataset, max_faces: int) -> FaceBank:
    return dataset if isinstance(dataset, FaceBank) else FaceBank(dataset, max_faces=max_faces)


def _lambda_inter(editor) -> float:
    cfg = getattr(editor, "cfg", None)
    return float(cfg.train.lambda_inter) if cfg is not None else 2.5


def interpolation_widget(editor, dataset, *, lambda_inter: float | None = None, threaded: bool = True,
                         max_faces: int = 24, display_px: int = 256, face_a: int = 0, face_b: int = 1,
                         t: float = 0.0, render_threads: int | None = 1):
    """Latent interpolation between two faces' masks through the MaskVAE (Sec. 3.2).

    A slider for ``t`` in [-1, 2] (and a play button linked to it) decodes
    ``z_A + t (z_B - z_A)``; the DMN renders that mask in face A's style. EBST's ``z^inter`` and
    ``z^outer`` (``t = +-1/lambda_inter``, ``lambda_inter`` from the editor's config, else 2.5) are
    named in the caption and have jump buttons. Returns ``Panel(widget, InterpolationController)``.
    ``threaded=False`` renders inside each callback (deterministic, for tests and scripts);
    ``render_threads`` is the torch CPU thread count of the render thread (None: torch's default).
    """
    from .ui import InterpolationController
    ctl = InterpolationController(editor, _bank(dataset, max_faces),
                                  lambda_inter=_lambda_inter(editor) if lambda_inter is None else lambda_inter,
                                  threaded=threaded, display_px=display_px, face_a=face_a, face_b=face_b, t=t,
                                  render_threads=render_threads)
    return Panel(ctl.widget, ctl)


def mask_editor(editor, dataset, *, threaded: bool = True, max_faces: int = 24, display_px: int = 256,
                face: int = 0, brush_class: int | str = "skin", brush_size: int = 2, render_threads: int | None = 1,
                preview_factor: int | None = None):
    """Paint on a face's mask (19-class palette, brush size, undo, reset, one-click edits); each
    stroke re-renders the face with its original style (Sec. 3.3), as a preview at
    ``1/preview_factor`` size while the mouse drags (None: 2 from 256 px up, else off).
    Returns ``Panel(widget, MaskEditorController)``."""
    from .ui import MaskEditorController
    ctl = MaskEditorController(editor, _bank(dataset, max_faces), threaded=threaded, display_px=display_px,
                               face=face, brush_class=brush_class, brush_size=brush_size,
                               render_threads=render_threads, preview_factor=preview_factor)
    return Panel(ctl.widget, ctl)


def style_copy_widget(editor, dataset, *, threaded: bool = True, max_faces: int = 24, display_px: int = 256,
                      mask_face: int = 0, reference: int = 1, mask_source=None, render_threads: int | None = 1):
    """Render a mask (a face's, or a mask editor's current one via ``mask_source``) in the style of a
    chosen reference face. Returns ``Panel(widget, StyleCopyController)``."""
    from .ui import StyleCopyController
    ctl = StyleCopyController(editor, _bank(dataset, max_faces), threaded=threaded, display_px=display_px,
                              mask_face=mask_face, reference=reference, mask_source=mask_source,
                              render_threads=render_threads)
    return Panel(ctl.widget, ctl)


class EditingApp:
    """The controllers of :func:`editing_app`: ``editor``, ``bank``, ``interpolation`` (None without
    a MaskVAE), ``mask_editor``, ``style_copy``, ``uploads`` (the "Your own face" box), ``parser``
    (None when the app has none), ``faces`` (the folder shown, or None)."""

    def __init__(self, editor, bank, interpolation, mask_editor, style_copy, run_dir=None, uploads=None,
                 parser=None, faces=None):
        self.editor, self.bank, self.run_dir = editor, bank, run_dir
        self.interpolation, self.mask_editor, self.style_copy = interpolation, mask_editor, style_copy
        self.uploads, self.parser, self.faces = uploads, parser, faces
        if uploads is not None:
            uploads.on_added(self.face_added)

    def face_added(self, index: int) -> None:
        """A face was appended to the bank: list it in every face dropdown and edit it."""
        opts = self.bank.options
        dropdowns = [self.mask_editor.face, self.mask_editor.donor, self.style_copy.reference]
        if self.interpolation is not None:
            dropdowns += [self.interpolation.face_a, self.interpolation.face_b]
        for dd in dropdowns:
            value = dd.value
            with dd.hold_trait_notifications():
                dd.options = opts
                dd.value = value
        sc = self.style_copy
        value = sc.mask_face.value
        extra = [o for o in sc.mask_face.options if o[1] == sc.EDITED]
        with sc.mask_face.hold_trait_notifications():
            sc.mask_face.options = extra + opts
            sc.mask_face.value = value
        self.mask_editor.face.value = index

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every panel has rendered its latest state."""
        return all(p.wait(timeout) for p in (self.interpolation, self.mask_editor, self.style_copy) if p is not None)


def editing_app(run_dir: str | Path | None = None, *, split: str = "val", device: str = "auto",
                threaded: bool = True, max_faces: int = 24, display_px: int = 256, render_threads: int | None = 1,
                editor=None, dataset=None, faces: str | Path | None = None, parser="auto",
                preview_factor: int | None = None, precision: str | None = None):
    """The three panels in tabs and a "Your own face" upload box (:class:`UploadController`), from a trained run (``run_dir``,
    else ``$MASKGAN_RUN_DIR``, else ``runs/demo``) and the faces of a folder (``faces``, else
    ``$MASKGAN_FACES``; every face of it is listed) or else of its dataset's ``split``. The
    style-copy tab follows the mask editor's current mask.

    ``parser`` crops and parses images without a mask (folder faces and uploads): a loaded parser,
    a path for :func:`maskgan.photo.load_parser`, None for none, or ``"auto"``: ``$MASKGAN_PARSER``
    if set, else the run directory's imported parser (``face_parsers/``) or trained ``parser``
    stage, else none. ``precision``: what frames render in (``auto``, ``fp32``, ``bf16``; None:
    ``$MASKGAN_PRECISION``, else auto; :mod:`maskgan.precision`), also for a given ``editor`` when set;
    ``app.editor.precision`` switches it later. Pass ``editor``/``dataset`` to skip loading. Returns ``(Tab, EditingApp)``;
    the upload box is ``app.uploads.widget`` (:func:`app_page` shows it above the tabs).
    """
    import ipywidgets as w

    from .ui import InterpolationController, MaskEditorController, StyleCopyController
    from .uploads import UploadController
    path = None
    if editor is None:
        from ..device import resolve_device
        from ..editing import Editor
        from ..precision import requested
        path = resolve_run_dir(run_dir)
        editor = Editor.from_run(path, device=str(resolve_device(device)), precision=requested(precision))
    elif precision is not None:
        editor.precision = precision
    parser = _app_parser(parser, path, editor)
    folder = resolve_faces(faces) if dataset is None else None
    if folder is not None:
        if getattr(editor, "cfg", None) is None:
            raise ValueError("pass `dataset=` : this editor has no config, so the size of its faces is unknown")
        from ..photo import open_faces
        dataset = open_faces(folder, int(editor.cfg.data.size), parser=parser)
        max_faces = max(max_faces, len(dataset))  # a folder the user chose is shown whole
    if dataset is None:
        from ..data import build_dataset
        if getattr(editor, "cfg", None) is None:
            raise ValueError("pass `dataset=` : this editor has no config to build its dataset from")
        dataset = build_dataset(editor.cfg.data, split)
    bank = _bank(dataset, max_faces)
    kw = dict(threaded=threaded, display_px=display_px, render_threads=render_threads)
    interp = (InterpolationController(editor, bank, lambda_inter=_lambda_inter(editor), **kw)
              if editor.vae is not None else None)
    editor_ctl = MaskEditorController(editor, bank, preview_factor=preview_factor, **kw)
    style_ctl = StyleCopyController(editor, bank, mask_source=editor_ctl, **kw)
    uploads = UploadController(bank, parser)
    tabs, titles = [], []
    if interp is not None:
        tabs.append(interp.widget)
        titles.append("Latent interpolation")
    tabs += [editor_ctl.widget, style_ctl.widget]
    titles += ["Mask editor", "Style copy"]
    tab = w.Tab(children=tabs, titles=titles)
    app = EditingApp(editor, bank, interp, editor_ctl, style_ctl, run_dir=path, uploads=uploads, parser=parser,
                     faces=folder)
    return tab, app


def _app_parser(parser, run_dir, editor):
    """The face parser of the app (see :func:`editing_app`'s ``parser``)."""
    import os

    from ..errors import MaskGANError
    from ..photo import load_parser
    device = str(getattr(editor, "device", "cpu"))
    if parser is None or (parser != "auto" and not isinstance(parser, (str, Path))):
        return parser
    if parser != "auto":
        return load_parser(parser, device=device)
    if os.environ.get(PARSER_ENV):
        return load_parser(os.environ[PARSER_ENV], device=device)
    if run_dir is None:
        return None
    try:
        return load_parser(run_dir, device=device)
    except MaskGANError:
        return None


def app_page(run_dir: str | Path | None = None, **kwargs):
    """What ``notebooks/app.ipynb`` shows: a status line and :func:`editing_app`, or, when the run has
    no trained DMN yet, a message saying which notebook or command to run first."""
    import html

    import ipywidgets as w

    from ..errors import MaskGANError
    ready, message = run_status(run_dir)

    def line(text: str, ok: bool):
        colour = "#1b5e20" if ok else "#b00020"
        return w.HTML(f"<div style='color:{colour};font-size:12px'>{html.escape(text)}</div>")

    if not ready:
        return w.VBox([line(message, False)])
    try:
        tab, app = editing_app(run_dir, **kwargs)
    except MaskGANError as e:  # e.g. a faces folder with a bad file: say so in the page
        return w.VBox([line(message, True), line(str(e), False)])
    where = f"faces of {app.faces}" if app.faces is not None else "faces of the run's dataset"
    parsed = "a face parser for photos without a mask" if app.parser is not None else "no face parser"
    from ..precision import matrix_units
    units = f" ({matrix_units(app.editor.device)})" if app.editor.device.type in ("cpu", "cuda") else ""
    rendering = f"frames render in {app.editor.precision}{units}"
    page = w.VBox([line(message, True), line(f"{where}; {parsed}; {rendering}.", True), app.uploads.widget, tab])
    page.app = app  # for notebook users who want the controllers
    return page
