"""The editing app: one page with the mask editor first, the other panels in tabs, and a help box.

:func:`app_page` is what ``make app`` serves (Voila, ``notebooks/app.ipynb``) and what a notebook cell
shows: a title with a badge naming the models (the kit's shipped models, or your run), one line
saying what they know, the tabs (each with a one-line hint), and a collapsed help box with the
developer notes (run folder, environment variables, commands). :func:`editing_app` builds the
panels; :class:`EditingApp` holds their controllers.

What the models know matters: the shipped models were trained on SynthFaces, synthetic 64 px
faces. A photo given to them (or to a face parser trained on SynthFaces) comes back as a smear, so
the upload box warns when a photo meets such models, and when its crop box is the whole photo (the
parser found no face to crop around).
"""
from __future__ import annotations

import html
from pathlib import Path

from .faces import resolve_run_dir, run_status
from .uploads import PARSER_ENV, UploadController, resolve_faces

__all__ = ["EditingApp", "editing_app", "app_page", "model_badge", "precision_control", "TAB_TITLES"]

#: The tabs, in the order the page shows them: the editing surface first.
TAB_TITLES = ("Mask editor", "Latent interpolation", "Style copy", "Your own face")


class EditingApp:
    """The controllers of :func:`editing_app`: ``editor``, ``bank``, ``interpolation`` (None without
    a MaskVAE), ``mask_editor``, ``style_copy``, ``uploads`` (the "Your own face" tab), ``parser``
    (None when the app has none), ``faces`` (the folder shown, or None), ``tabs`` (the Tab widget)."""

    def __init__(self, editor, bank, interpolation, mask_editor, style_copy, run_dir=None, uploads=None,
                 parser=None, faces=None, tabs=None):
        self.editor, self.bank, self.run_dir = editor, bank, run_dir
        self.interpolation, self.mask_editor, self.style_copy = interpolation, mask_editor, style_copy
        self.uploads, self.parser, self.faces, self.tabs = uploads, parser, faces, tabs
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
        if self.tabs is not None:
            self.tabs.selected_index = 0  # back to the mask editor, on the new face

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until every panel has rendered its latest state."""
        return all(p.wait(timeout) for p in (self.interpolation, self.mask_editor, self.style_copy) if p is not None)


def _hinted(hint: str, widget):
    import ipywidgets as w
    return w.VBox([w.HTML(f"<div class='maskgan-hint' style='font-size:13px;color:#333;margin:4px 0'>{hint}</div>"),
                   widget])


def editing_app(run_dir: str | Path | None = None, *, split: str = "val", device: str = "auto",
                threaded: bool = True, max_faces: int = 24, display_px: int = 256, render_threads: int | None = 1,
                editor=None, dataset=None, faces: str | Path | None = None, parser="auto",
                preview_factor: int | None = None, precision: str | None = None):
    """The panels in tabs, the mask editor first, and a "Your own face" upload tab
    (:class:`UploadController`), from a trained run (``run_dir``, else ``$MASKGAN_RUN_DIR``, else
    ``runs/demo``) and the faces of a folder (``faces``, else ``$MASKGAN_FACES``; every face of it is
    listed) or else of its dataset's ``split``. The style-copy tab follows the mask editor's current mask.

    ``parser`` crops and parses images without a mask (folder faces and uploads): a loaded parser,
    a path for :func:`maskgan.photo.load_parser`, None for none, or ``"auto"``: ``$MASKGAN_PARSER``
    if set, else the run directory's imported parser (``face_parsers/``) or trained ``parser``
    stage, else none. ``precision``: what frames render in (``auto``, ``fp32``, ``bf16``; None:
    ``$MASKGAN_PRECISION``, else auto; :mod:`maskgan.precision`), also for a given ``editor`` when set;
    ``app.editor.precision`` switches it later. Pass ``editor``/``dataset`` to skip loading. Returns
    ``(Tab, EditingApp)``.
    """
    import ipywidgets as w

    from . import _bank, _lambda_inter
    from .mask_editor import MaskEditorController
    from .ui import InterpolationController, StyleCopyController
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
        dataset = open_faces(folder, int(editor.cfg.data.size), parser=parser,
                             resample=getattr(editor, "resample", "lanczos"))
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
    uploads = UploadController(bank, parser, warnings=domain_warnings(editor, parser))
    tabs, titles = [editor_ctl.widget], [TAB_TITLES[0]]
    if interp is not None:
        tabs.append(_hinted("Pick two faces and drag <b>t</b>: the mask morphs from face A's (t = 0) to face B's "
                            "(t = 1), rendered in face A's style. Press play, or jump to the two points EBST "
                            "trains on.", interp.widget))
        titles.append(TAB_TITLES[1])
    tabs.append(_hinted("Choose whose mask to render and whose style to render it in. \"edited mask\" follows "
                        "your strokes in the mask editor.", style_ctl.widget))
    titles.append(TAB_TITLES[2])
    tabs.append(uploads.widget)
    titles.append(TAB_TITLES[3])
    tab = w.Tab(children=tabs, titles=titles)
    tab.add_class("maskgan-tabs")
    app = EditingApp(editor, bank, interp, editor_ctl, style_ctl, run_dir=path, uploads=uploads, parser=parser,
                     faces=folder, tabs=tab)
    return tab, app


def _trained_on(obj) -> str | None:
    """The dataset a kit network was trained on (its config), or None when it is not known."""
    cfg = getattr(obj, "cfg", None)
    data = getattr(cfg, "data", None)
    return getattr(data, "dataset", None)


def domain_warnings(editor, parser) -> dict[str, str]:
    """What to tell a user who uploads a face, given what the models were trained on:
    ``{"generator": ..., "parser": ...}`` for SynthFaces-trained ones (empty when none is)."""
    out = {}
    if _trained_on(editor) == "synthfaces":
        out["generator"] = ("these models were trained on SynthFaces (synthetic 64 px faces): a real face renders "
                            "as a smear of SynthFaces colours. Real photos need the authors' weights "
                            "(docs/real-faces.md).")
    if parser is not None and _trained_on(parser) == "synthfaces":
        out["parser"] = ("the face parser was trained on SynthFaces: it cannot find the parts of a real photo, so "
                         "its mask will be noise. Upload the photo's mask too, or import BiSeNet "
                         "(docs/real-faces.md).")
    return out


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
        found = load_parser(run_dir, device=device)
    except MaskGANError:
        return None
    if getattr(found, "cfg", None) is None:  # the run's own parser stage: remember what it was trained on
        try:
            from ..run import Run
            found.cfg = Run(run_dir, report=None).config("parser")
        except (MaskGANError, AttributeError):
            pass
    return found


def model_badge(editor, run_dir) -> str:
    """HTML of the badge that names the models the page uses."""
    from ..pretrained import is_pretrained, read_record
    stage = getattr(editor, "stage", None) or "?"
    if run_dir is not None and is_pretrained(run_dir):
        rec = read_record(Path(run_dir).name)
        name, colour = f"Shipped models: {rec.get('title', Path(run_dir).name)}", "#1565c0"
    else:
        name, colour = f"Your run: {Path(run_dir).name if run_dir is not None else 'models passed in'}", "#2e7d32"
    size = getattr(getattr(getattr(editor, "cfg", None), "data", None), "size", None)
    detail = f"{stage} generator" + (f", {size} px" if size else "")
    return (f"<span class='maskgan-badge' style='display:inline-block;padding:3px 10px;border-radius:12px;"
            f"background:{colour};color:white;font-size:13px'>{html.escape(name)}</span> "
            f"<span style='font-size:12px;color:#555'>{html.escape(detail)}</span>")


def _rendering(editor) -> str:
    from ..precision import matrix_units
    units = f" ({matrix_units(editor.device)})" if editor.device.type in ("cpu", "cuda") else ""
    return f"frames render in {editor.precision}{units}"


def precision_control(app):
    """A dropdown that sets what the app's frames render in (:attr:`maskgan.editing.Editor.precision`)
    and re-renders the mask editor; its caption says what the machine has."""
    import ipywidgets as w
    editor = app.editor
    dropdown = w.Dropdown(options=[("bf16 where the CPU has it (auto)", "auto"), ("fp32", "fp32"), ("bf16", "bf16")],
                          value="fp32" if editor.precision == "fp32" else "auto", description="render in",
                          layout=w.Layout(width="330px"))
    dropdown.add_class("maskgan-precision")
    caption = w.HTML(f"<span style='font-size:12px;color:#555'>{html.escape(_rendering(editor))}</span>")

    def changed(change):
        editor.precision = change["new"]
        caption.value = f"<span style='font-size:12px;color:#555'>{html.escape(_rendering(editor))}</span>"
        app.mask_editor._changed()
    dropdown.observe(changed, names="value")
    return w.HBox([dropdown, caption])


def app_page(run_dir: str | Path | None = None, **kwargs):
    """What ``notebooks/app.ipynb`` shows: the title and a badge naming the models, the tabs (the
    mask editor first), and a collapsed help box; or, when the run has no trained generator yet, a
    message saying which notebook or command to run first."""
    import ipywidgets as w

    from ..errors import MaskGANError
    ready, message = run_status(run_dir)

    def line(text: str, colour: str):
        return w.HTML(f"<div style='color:{colour};font-size:13px'>{html.escape(text)}</div>")

    title = w.HTML("<div style='font-size:12px;color:#555'>MaskGAN face editor (Lee et al., CVPR 2020)</div>")
    if not ready:
        return w.VBox([title, line(message, "#b00020")])
    try:
        tab, app = editing_app(run_dir, **kwargs)
    except MaskGANError as e:  # e.g. a faces folder with a bad file: say so in the page
        return w.VBox([title, line(str(e), "#b00020")])
    path = app.run_dir
    warn = domain_warnings(app.editor, app.parser).get("generator")
    header = w.HTML(model_badge(app.editor, path)
                    + (f"<div style='font-size:12px;color:#555;margin-top:4px'>Edit the faces below; "
                       f"{html.escape(warn)}</div>" if warn else ""))
    where = f"faces of {app.faces}" if app.faces is not None else "faces of the run's dataset"
    parsed = "a face parser for photos without a mask" if app.parser is not None else "no face parser"
    header.value += (f"<div class='maskgan-status' style='font-size:12px;color:#555'>{html.escape(where)}; "
                     f"{html.escape(parsed)}; {html.escape(_rendering(app.editor))}.</div>")
    notes = (f"<p>{html.escape(message)}</p><p>{html.escape(where)}; {html.escape(parsed)}.</p>"
             "<ul style='font-size:12px'>"
             "<li><code>make app RUN_DIR=... FACES=...</code> chooses the run and a folder of faces "
             "(<code>$MASKGAN_RUN_DIR</code>, <code>$MASKGAN_FACES</code>, <code>$MASKGAN_PARSER</code>)</li>"
             "<li>edits are saved into <code>runs/edits/</code> (<code>$MASKGAN_EDITS</code>)</li>"
             "<li><code>make app PRECISION=fp32|bf16|auto</code> (<code>$MASKGAN_PRECISION</code>): what frames "
             "render in; the menu above the tabs switches it (docs/speed.md)</li>"
             "<li><code>make demo</code> trains your own models; <code>make lab</code> opens the notebooks</li>"
             "<li>the logic lives in <code>maskgan/widgets/</code> and <code>maskgan/composite.py</code></li></ul>")
    help_box = w.Accordion(children=[w.HTML(notes)], titles=("Help and developer notes",), selected_index=None)
    help_box.add_class("maskgan-help")
    page = w.VBox([title, header, precision_control(app), tab, help_box])
    page.app = app  # for notebook users who want the controllers
    return page
