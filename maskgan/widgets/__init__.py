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
    if name in ("InterpolationController", "StyleCopyController"):
        from . import ui
        return getattr(ui, name)
    if name == "MaskEditorController":
        from .mask_editor import MaskEditorController
        return MaskEditorController
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
                preview_factor: int | None = None, blend: str | None = None, show_rerender: bool = False):
    """Paint on a face's mask (19-class palette, brush size, undo, reset, one-click edits); each
    stroke re-renders the face with its original style (Sec. 3.3), as a preview at
    ``1/preview_factor`` size while the mouse drags (None: 2 from 256 px up, else off), and
    composites it into the face (``blend``, default :data:`maskgan.composite.DEFAULT_BLEND`;
    ``"rerender"``: the paper's whole-face edit; ``show_rerender`` shows it next to the edit), with
    buttons that save the edited image and mask. Returns ``Panel(widget, MaskEditorController)``."""
    from ..composite import DEFAULT_BLEND
    from .mask_editor import MaskEditorController
    ctl = MaskEditorController(editor, _bank(dataset, max_faces), threaded=threaded, display_px=display_px,
                               face=face, brush_class=brush_class, brush_size=brush_size,
                               render_threads=render_threads, preview_factor=preview_factor,
                               blend=blend or DEFAULT_BLEND, show_rerender=show_rerender)
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


from .app import EditingApp, app_page, editing_app  # noqa: E402  (it uses the helpers above)
