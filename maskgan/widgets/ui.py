"""The interpolation and style-copy panels, and what every panel shares (ipywidgets 8).

The mask editor, the app's main panel, has its own module: :mod:`maskgan.widgets.mask_editor`.

Each panel is a small *controller* object that owns its widgets (attributes you can set from
Python, exactly as the browser does) and its state (readable: current label map, frame bytes).
Every change of a widget goes through an observer that snapshots the state and hands it to a
:class:`~maskgan.widgets.frames.LatestOnly` queue; a frame is the DMN backbone on the state's mask
with a cached style, PNG-encoded into an ``ipywidgets.Image``.
"""
from __future__ import annotations

import html
from typing import Callable

import numpy as np
import torch

from ..nn import interpolate
from .faces import FaceBank
from .frames import LatestOnly, display_scale, ebst_marks, editor_lock, frame_png

__all__ = ["InterpolationController", "StyleCopyController", "FramePanel", "captioned", "hex_colour"]


def captioned(widget, caption: str):
    """``widget`` with a small caption above it."""
    import ipywidgets as w
    return w.VBox([w.HTML(f"<div style='font-size:12px;color:#444'>{caption}</div>"), widget],
                  layout=w.Layout(align_items="center", margin="0 6px"))


def hex_colour(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))


class FramePanel:
    """What every panel shares: editor, faces, a render queue, a status line, frame counting."""

    def __init__(self, editor, bank: FaceBank, threaded: bool, display_px: int, render_threads: int | None = 1):
        import ipywidgets as w
        if not isinstance(bank, FaceBank):
            raise TypeError(f"expected a FaceBank (maskgan.widgets.FaceBank(dataset)), got {type(bank).__name__}")
        if render_threads is not None and (isinstance(render_threads, bool) or not isinstance(render_threads, int)
                                           or render_threads < 1):
            raise ValueError(f"render_threads must be a positive integer or None, got {render_threads!r}")
        self.editor, self.bank = editor, bank
        self.scale = display_scale(bank.size, display_px)
        self.status = w.HTML("")
        self.frames = 0  # frames rendered so far
        self._lock = editor_lock(editor)
        # Torch's CPU thread count is per OS thread (OpenMP), so the render thread can use its own:
        # one thread renders a small frame about as fast as several, and on a busy machine extra
        # threads wait on each other (measured: 15 ms with one, over 1 s with two on a loaded 2-core box).
        on_cpu = getattr(getattr(editor, "device", None), "type", "cpu") == "cpu"
        setup = (lambda: torch.set_num_threads(render_threads)) if (render_threads and on_cpu) else None
        self._queue = LatestOnly(self._render_state, threaded=threaded, on_error=self._show_error,
                                 name=f"maskgan-{type(self).__name__}", thread_setup=setup)
        self._listeners: list[Callable[[], None]] = []

    def _image(self):
        import ipywidgets as w
        return w.Image(value=b"", format="png")

    def _style(self, index: int) -> torch.Tensor:
        """Style (AdaIN parameters) of face ``index``, cached by the editor under the face's name."""
        face = self.bank[index]
        return self.editor.style(face["image"], face["label"], key=face["name"])

    def _show_error(self, error: BaseException) -> None:
        self.status.value = f"<span style='color:#b00020'>frame failed: {html.escape(repr(error))}</span>"

    def _frame_done(self) -> None:
        self.frames += 1
        if self.status.value.startswith("<span style='color:#b00020'>"):
            self.status.value = ""
        for fn in list(self._listeners):
            fn()

    def on_frame(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after every rendered frame."""
        self._listeners.append(fn)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every requested frame is rendered (or dropped as stale); False on timeout."""
        return self._queue.wait(timeout)

    @property
    def queue(self) -> LatestOnly:
        """The render queue (its counters show how many frames were requested, rendered, dropped)."""
        return self._queue

    def _render_state(self, state) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


# --- latent interpolation (Sec. 3.2; EBST's z^inter / z^outer, Algorithm 1) ----------------------

class InterpolationController(FramePanel):
    """Two faces, a slider for ``t`` in [-1, 2] and a play button: the MaskVAE mask at
    ``z_A + t (z_B - z_A)`` and the DMN's face for it in face A's style.

    Drive it like the browser does: ``ctl.slider.value = 0.4``, ``ctl.face_b.value = 3``; read
    ``ctl.label`` (decoded mask, H x W), ``ctl.image_png`` / ``ctl.mask_png`` (frame bytes).
    """

    T_MIN, T_MAX, T_STEP = -1.0, 2.0, 0.05

    def __init__(self, editor, bank: FaceBank, lambda_inter: float = 2.5, threaded: bool = True,
                 display_px: int = 256, face_a: int = 0, face_b: int = 1, t: float = 0.0,
                 render_threads: int | None = 1):
        import ipywidgets as w
        if getattr(editor, "vae", None) is None:
            raise ValueError("latent interpolation needs the MaskVAE, and this editor has none: train it first "
                             "(notebook 01, or `python -m maskgan train vae --run-dir RUN`) and load the run "
                             "with Editor.from_run(RUN)")
        super().__init__(editor, bank, threaded, display_px, render_threads)
        self.marks = ebst_marks(lambda_inter)
        self.lambda_inter = float(lambda_inter)
        self._latents: dict[str, torch.Tensor] = {}
        self.label: torch.Tensor | None = None

        opts = bank.options
        self.face_a = w.Dropdown(options=opts, value=bank.index(face_a), description="face A")
        self.face_b = w.Dropdown(options=opts, value=bank.other(face_b), description="face B")
        self.slider = w.FloatSlider(value=t, min=self.T_MIN, max=self.T_MAX, step=self.T_STEP, description="t",
                                    readout_format="+.2f", continuous_update=True,
                                    layout=w.Layout(width="420px"))
        n_steps = int(round((self.T_MAX - self.T_MIN) / self.T_STEP))
        self.play = w.Play(value=self._t_to_step(t), min=0, max=n_steps, step=1, interval=150,
                           description="play", tooltip="play t from -1 to 2")
        # The Play widget counts integer steps; link it to the float slider through t = T_MIN + k * step.
        w.link((self.play, "value"), (self.slider, "value"), transform=(self._step_to_t, self._t_to_step))
        words = {"z^outer": "EBST's outer mask", "z^inter": "EBST's inner mask"}
        self.jump = {name: w.Button(description=f"{words.get(name, name)} (t = {t_mark:+.2f})",
                                    layout=w.Layout(width="210px"),
                                    tooltip=f"jump to EBST's {name}") for name, t_mark in self.marks.items()}
        for name, button in self.jump.items():
            button.on_click(lambda _b, t_mark=self.marks[name]: setattr(self.slider, "value", t_mark))
        self.where = w.HTML("")
        self.caption = w.HTML(self._caption_html())
        self.thumb_a, self.thumb_b = self._image(), self._image()
        self.mask_image, self.image = self._image(), self._image()

        for widget in (self.face_a, self.face_b, self.slider):
            widget.observe(self._request, names="value")
        # CSS classes: stable handles for browser tests and custom styling.
        for widget, css in ((self.slider, "maskgan-t-slider"), (self.play, "maskgan-play"),
                            (self.image, "maskgan-interp-image"), (self.mask_image, "maskgan-interp-mask")):
            widget.add_class(css)
        self.widget = w.VBox([
            self.caption,
            w.HBox([self.face_a, self.face_b]),
            w.HBox([self.play, self.slider, self.where]),
            w.HBox(list(self.jump.values())),
            w.HBox([captioned(self.thumb_a, "face A (its style)"), captioned(self.mask_image, "the mask at t"),
                    captioned(self.image, "that mask in face A's style"), captioned(self.thumb_b, "face B")]),
            self.status,
        ])
        self._request()
        self.wait(60)  # the first frame is there when the widget is shown (or saved by papermill)

    # t <-> integer Play step
    def _step_to_t(self, k: int) -> float:
        return round(self.T_MIN + int(k) * self.T_STEP, 6)

    def _t_to_step(self, t: float) -> int:
        return int(round((float(t) - self.T_MIN) / self.T_STEP))

    def _caption_html(self) -> str:
        lo, hi = self.marks["z^outer"], self.marks["z^inter"]
        return ("<b>Latent interpolation (MaskVAE, Sec. 3.2).</b> The mask decodes "
                "z = z<sub>A</sub> + t (z<sub>B</sub> &minus; z<sub>A</sub>): t = 0 reconstructs face A's mask, "
                "t = 1 face B's, t outside [0, 1] extrapolates. The face is the DMN's rendering of that mask in "
                f"face A's style. EBST (Algorithm 1) trains on z<sup>inter</sup> at t = {hi:+.2f} and "
                f"z<sup>outer</sup> at t = {lo:+.2f} (&lambda;<sub>inter</sub> = {self.lambda_inter:g}).")

    def _where_html(self, t: float) -> str:
        names = [name for name, t_mark in self.marks.items() if abs(t - t_mark) < self.T_STEP / 2]
        names += ["face A" if abs(t) < 1e-9 else "face B" if abs(t - 1) < 1e-9 else ""]
        tag = ", ".join(n for n in names if n)
        return f"<code>t = {t:+.2f}</code>" + (f" &larr; <b>{tag}</b>" if tag else "")

    @property
    def t(self) -> float:
        return float(self.slider.value)

    def set_t(self, t: float) -> None:
        """Move the slider (the observers render the frame)."""
        self.slider.value = float(t)

    def select(self, a: int | str | None = None, b: int | str | None = None) -> None:
        """Choose face A and/or face B by index or name."""
        if a is not None:
            self.face_a.value = self.bank.index(a)
        if b is not None:
            self.face_b.value = self.bank.index(b)

    @property
    def image_png(self) -> bytes:
        """PNG bytes of the displayed DMN frame."""
        return self.image.value

    @property
    def mask_png(self) -> bytes:
        """PNG bytes of the displayed (colourised) interpolated mask."""
        return self.mask_image.value

    def _request(self, _change=None) -> None:
        t = self.t
        self.where.value = self._where_html(t)
        self._queue.request((int(self.face_a.value), int(self.face_b.value), t))

    def _latent(self, index: int) -> torch.Tensor:
        face = self.bank[index]
        if face["name"] not in self._latents:
            self._latents[face["name"]] = self.editor.encode(face["label"])
        return self._latents[face["name"]]

    def _render_state(self, state) -> None:
        a, b, t = state
        with self._lock:
            z = interpolate(self._latent(a), self._latent(b), t)
            label = self.editor.decode(z)[0]
            image = self.editor.render(label, self._style(a))
        thumb_a = frame_png(self.bank[a]["image"], self.scale)
        thumb_b = frame_png(self.bank[b]["image"], self.scale)
        mask_png, image_png = frame_png(label, self.scale), frame_png(image, self.scale)
        self.label = label.cpu()
        if self.thumb_a.value != thumb_a:
            self.thumb_a.value = thumb_a
        if self.thumb_b.value != thumb_b:
            self.thumb_b.value = thumb_b
        self.mask_image.value, self.image.value = mask_png, image_png
        self._frame_done()


# --- style copy (Sec. 3.3: the style of one face, the layout of another) ------------------------

class StyleCopyController(FramePanel):
    """Render a mask in the style of a chosen reference face.

    ``mask_face`` picks whose mask to render; when a :class:`MaskEditorController` is given as
    ``mask_source`` an extra choice, "edited mask", renders that editor's current mask and follows its
    strokes. ``reference`` picks the face whose style (cached under its name) renders it.
    """

    EDITED = -1

    def __init__(self, editor, bank: FaceBank, threaded: bool = True, display_px: int = 256, mask_face: int = 0,
                 reference: int = 1, mask_source=None,
                 render_threads: int | None = 1):
        import ipywidgets as w
        super().__init__(editor, bank, threaded, display_px, render_threads)
        self.mask_source = mask_source
        opts = bank.options
        mask_opts = ([("edited mask (Mask editor tab)", self.EDITED)] if mask_source is not None else []) + opts
        self.mask_face = w.Dropdown(options=mask_opts,
                                    value=self.EDITED if mask_source is not None else bank.index(mask_face),
                                    description="mask of")
        self.reference = w.Dropdown(options=opts, value=bank.other(reference),
                                    description="style of")
        self.mask_image, self.reference_image, self.image = self._image(), self._image(), self._image()
        for widget in (self.mask_face, self.reference):
            widget.observe(self._request, names="value")
        if mask_source is not None:
            mask_source.on_label_change(self._on_source_change)
        self.widget = w.VBox([
            w.HTML("<b>Style copy.</b> The DMN renders the mask (left) with the AdaIN parameters computed "
                   "from the reference face (Fig. 2: style encoder with SFT); each reference's style is computed "
                   "once and cached."),
            w.HBox([self.mask_face, self.reference]),
            w.HBox([captioned(self.mask_image, "mask"), captioned(self.reference_image, "style from this face"),
                    captioned(self.image, "the mask in that face's style")]),
            self.status,
        ])
        self._request()
        self.wait(60)  # the first frame is there when the widget is shown (or saved by papermill)

    @property
    def label(self) -> np.ndarray:
        """The mask being rendered (H x W uint8)."""
        return self._current_label()

    @property
    def image_png(self) -> bytes:
        return self.image.value

    def select(self, mask_face: int | str | None = None, reference: int | str | None = None) -> None:
        """Choose the mask's face and/or the reference face by index or name."""
        if mask_face is not None:
            self.mask_face.value = mask_face if mask_face == self.EDITED else self.bank.index(mask_face)
        if reference is not None:
            self.reference.value = self.bank.index(reference)

    def _current_label(self) -> np.ndarray:
        if int(self.mask_face.value) == self.EDITED:
            return self.mask_source.label
        return self.bank[int(self.mask_face.value)]["label"].numpy().astype(np.uint8)

    def _on_source_change(self) -> None:
        if int(self.mask_face.value) == self.EDITED:
            self._request()

    def _request(self, _change=None) -> None:
        self._queue.request((self._current_label(), int(self.reference.value)))

    def _render_state(self, state) -> None:
        label, ref = state
        with self._lock:
            image = self.editor.render(torch.from_numpy(label.astype(np.int64)), self._style(ref))
        self.mask_image.value = frame_png(label, self.scale)
        ref_png = frame_png(self.bank[ref]["image"], self.scale)
        if self.reference_image.value != ref_png:
            self.reference_image.value = ref_png
        self.image.value = frame_png(image, self.scale)
        self._frame_done()
