"""Diagrams of the method, drawn by the kit: the Dense Mapping Network (paper Fig. 2) and one EBST
iteration (Algorithm 1), as matplotlib boxes and arrows annotated with tensor shapes.

No shape is written by hand. :func:`dmn_shapes` and :func:`ebst_shapes` build the kit's own
networks for a :class:`~maskgan.config.Config` on PyTorch's ``meta`` device (tensors with a shape
and no memory: the paper preset's 260 M parameters cost nothing) and run one forward pass with
hooks on the modules named in the diagram. A figure can compare presets side by side::

    fig = dmn_diagram(with_paper("cpu", cfg))     # every box: "cpu 8x32x16x16 / paper 1x64x128x128"
    fig = ebst_diagram(with_paper("cpu", cfg))

Shapes are ``N x C x H x W`` with ``N`` the training batch of the preset (``train.batch_size``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import Config
from .labels import NUM_CLASSES

__all__ = ["dmn_shapes", "ebst_shapes", "with_paper", "dmn_diagram", "ebst_diagram", "fmt_shape"]


# --- shapes from the networks ---------------------------------------------------------------------

def fmt_shape(shape) -> str:
    """``(8, 32, 16, 16)`` -> ``"8x32x16x16"`` (with the multiplication sign)."""
    return "\u00d7".join(str(int(s)) for s in shape)


def _hooked(named: dict[str, torch.nn.Module], shapes: dict[str, tuple]):
    handles = []
    for name, module in named.items():
        def hook(_m, _args, out, name=name):
            shapes[name] = tuple((out[0] if isinstance(out, (tuple, list)) else out).shape)
        handles.append(module.register_forward_hook(hook))
    return handles


def dmn_shapes(cfg: Config) -> dict[str, tuple]:
    """The output shape of every part of the DMN of Fig. 2 for ``cfg`` (one meta-device forward pass
    of :class:`maskgan.nn.DenseMappingNetwork` at batch ``cfg.train.batch_size``)."""
    from .nn import build_dmn
    with torch.device("meta"):
        dmn = build_dmn(cfg)
    n, s = cfg.train.batch_size, cfg.data.size
    le, se, bb = dmn.label_encoder, dmn.style_encoder, dmn.backbone
    shapes: dict[str, tuple] = {}
    handles = _hooked({"A": le.to_a, "B": le.to_b, "style.head": se.head, "SFT A": se.sft_a,
                       "style.middle": se.middle, "SFT B": se.sft_b, "style": se, "stem": bb.stem, "down": bb.down,
                       "blocks": bb.blocks[-1], "up": bb.up, "I^out": bb.head}, shapes)
    mask = torch.zeros(n, NUM_CLASSES, s, s, device="meta")
    dmn(mask, torch.zeros(n, 3, s, s, device="meta"))
    for h in handles:
        h.remove()
    shapes.update({"M^t": tuple(mask.shape), "I^t": (n, 3, s, s)})
    return shapes


def ebst_shapes(cfg: Config) -> dict[str, object]:
    """Shapes of one EBST iteration (Algorithm 1) for ``cfg``: the MaskVAE codes, the decoded masks,
    the DMN's renderings, the blender's alpha and the discriminator's per-scale predictions."""
    from .nn import build_blender, build_discriminator, build_maskvae
    with torch.device("meta"):
        vae, blender, disc = build_maskvae(cfg), build_blender(cfg), build_discriminator(cfg)
    n, s = cfg.train.batch_size, cfg.data.size
    mask = torch.zeros(n, NUM_CLASSES, s, s, device="meta")
    image = torch.zeros(n, 3, s, s, device="meta")
    z, _ = vae.encode(mask)
    logits = vae.decode(z)
    blend, alpha = blender(image, image)
    preds = [tuple(scale[-1].shape) for scale in disc(mask, image)]
    dmn = dmn_shapes(cfg)
    return {"M^t": tuple(mask.shape), "M^ref": tuple(mask.shape), "z^t": tuple(z.shape), "z^ref": tuple(z.shape),
            "z^inter": tuple(z.shape), "z^outer": tuple(z.shape), "logits": tuple(logits.shape),
            "M^inter": tuple(logits.shape), "M^outer": tuple(logits.shape), "style": dmn["style"],
            "I^t": tuple(image.shape), "I^out": dmn["I^out"], "I^inter": dmn["I^out"], "I^outer": dmn["I^out"],
            "alpha": tuple(alpha.shape), "I^blend": tuple(blend.shape),
            "D input": (n, NUM_CLASSES + 3, s, s), "D predictions": preds}


def with_paper(preset: str, cfg: Config) -> dict[str, Config]:
    """``{preset: cfg, "paper": Config.preset("paper")}`` (just ``{preset: cfg}`` for the paper preset):
    the configurations a notebook's diagrams compare."""
    return {preset: cfg} if preset == "paper" else {preset: cfg, "paper": Config.preset("paper")}


def _as_configs(configs) -> dict[str, Config]:
    return {"": configs} if isinstance(configs, Config) else dict(configs)


# --- drawing --------------------------------------------------------------------------------------
#
# On GitHub a README or docs image is shown about DISPLAY_WIDTH_PX wide, whatever its own width. The
# canvases are laid out in inches at about 11.5 in wide, so a point of font size keeps about
# 880 / (72 x 11.5) = 1.06 px there: the smallest text (NOTE_PT) is about 10 px tall on GitHub.
# ``tests/test_teaching.py`` checks every text of both diagrams against MIN_TEXT_PX.

DISPLAY_WIDTH_PX = 880  # how wide GitHub shows a README / docs image
MIN_TEXT_PX = 9  # the smallest font size a label may have there, in pixels
TEXT_PT, NOTE_PT, TITLE_PT = 10.5, 9.5, 11.5  # boxes and band titles; shape notes; the figure title

_COLORS = {"input": "#f2f2f2", "mask": "#fde9c9", "style": "#d9e8fb", "backbone": "#dcefdc", "frozen": "#e3e3e3",
           "blend": "#f3dcef", "loss": "#fbe0dc", "opt": "#fff8c6", "tensor": "#ffffff"}


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    def left(self, dy: float = 0.0):
        return (self.x - self.w / 2, self.y + dy)

    def right(self, dy: float = 0.0):
        return (self.x + self.w / 2, self.y + dy)

    def top(self, dx: float = 0.0):
        return (self.x + dx, self.y + self.h / 2)

    def bottom(self, dx: float = 0.0):
        return (self.x + dx, self.y - self.h / 2)


class _Canvas:
    """A matplotlib axes measured in inches (1 unit = 1 inch of the figure), with boxes, arrows and
    shape notes."""

    def __init__(self, width: float, height: float):
        import matplotlib.pyplot as plt
        self.fig, self.ax = plt.subplots(figsize=(width, height))
        self.fig.subplots_adjust(0, 0, 1, 1)
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_axis_off()

    def box(self, x, y, text, kind="input", w=2.4, h=0.62) -> _Box:
        from matplotlib.patches import FancyBboxPatch
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                         fc=_COLORS[kind], ec="0.35", lw=0.9))
        self.ax.text(x, y, text, ha="center", va="center", fontsize=TEXT_PT, linespacing=1.25)
        return _Box(x, y, w, h)

    def band(self, x0, y0, x1, y1, title, color):
        from matplotlib.patches import FancyBboxPatch
        self.ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02,rounding_size=0.12",
                                         fc=color, ec="none", alpha=0.35, zorder=0))
        self.ax.text(x0 + 0.1, y1 - 0.08, title, ha="left", va="top", fontsize=TEXT_PT, style="italic", color="0.2")

    def arrow(self, p, q, label=None, rad=0.0, label_at=0.5, label_dx=0.0, label_dy=0.06):
        self.ax.annotate("", xy=q, xytext=p, arrowprops=dict(
            arrowstyle="-|>", color="0.25", lw=1.1, shrinkA=1, shrinkB=1, mutation_scale=12,
            connectionstyle=f"arc3,rad={rad}"))
        if label:
            x = p[0] + (q[0] - p[0]) * label_at + label_dx
            y = p[1] + (q[1] - p[1]) * label_at + label_dy
            self.ax.text(x, y, label, ha="center", va="bottom", fontsize=TEXT_PT, color="0.2")

    def note(self, box: _Box, lines: list[str], align: str = "center", dx: float = 0.0):
        """Shape lines below a box: centred on it, or (``align="left"``) starting ``dx`` from its
        centre, which leaves room on the left for an arrow leaving the box downwards."""
        if lines:
            self.ax.text(box.x + dx, box.y - box.h / 2 - 0.04, "\n".join(lines), ha=align, va="top",
                         fontsize=NOTE_PT, family="monospace", color="0.15", linespacing=1.1)


def _lines(shapes: dict[str, dict], key: str) -> list[str]:
    """One line per preset: ``"cpu   8x32x16x16"``."""
    width = max(len(p) for p in shapes)
    out = []
    for preset, sh in shapes.items():
        value = sh[key]
        text = " + ".join(fmt_shape(v) for v in value) if isinstance(value, list) else fmt_shape(value)
        out.append(f"{preset:<{width}} {text}".strip())
    return out


def _settings(configs: dict[str, Config], keys) -> list[str]:
    """One line per preset: ``"cpu: size 64, N 8, ..."``."""
    lines = []
    for preset, cfg in configs.items():
        vals = ", ".join(f"{k} {v}" for k, v in keys(cfg))
        lines.append(f"{preset}: {vals}" if preset else vals)
    return lines


def dmn_diagram(configs):
    """The Dense Mapping Network of Fig. 2 with the output shape of every part for each config
    (a :class:`Config`, or ``{name: Config}`` to compare presets, see :func:`with_paper`).

    Drawn as three columns read top to bottom -- the label encoder, the spatial-aware style encoder,
    the backbone -- so that the figure stays legible at README width."""
    configs = _as_configs(configs)
    shapes = {p: dmn_shapes(c) for p, c in configs.items()}
    c = _Canvas(11.4, 9.4)

    def sh(key):
        return _lines(shapes, key)
    xl, xm, xr, w = 1.75, 5.7, 9.65, 2.6  # column centres, box width
    rows = [8.45 - 1.22 * i for i in range(7)]
    c.band(0.05, rows[4] - 0.85, 3.55, 9.35, "label encoder\n(on the target mask $M^t$)", _COLORS["mask"])
    c.band(3.95, 0.05, 7.45, 9.35, "spatial-aware style encoder\n(on the target image $I^t$)", _COLORS["style"])
    c.band(7.85, 0.05, 11.35, 9.35, "backbone $G_A$: Pix2PixHD global\ngenerator, AdaIN residual blocks",
           _COLORS["backbone"])
    down = -0.6  # vertical arrows run left of centre; the shape notes start right of them

    def column(boxes):
        for a, b in zip(boxes, boxes[1:]):
            c.arrow(a.bottom(down), b.top(down))

    def noted_column(x, spec):
        """Boxes (text, kind, shape key or None) down the rows at ``x``, joined, with their shapes noted."""
        boxes = [c.box(x, y, text, kind, w=w) for y, (text, kind, _k) in zip(rows, spec)]
        column(boxes)
        for box, (_t, _kind, key) in zip(boxes, spec):
            if key:
                c.note(box, sh(key), "left", down + 0.15)
        return boxes
    # label encoder
    mt = c.box(xl, rows[0], "$M^t$: one-hot mask", "tensor", w=w)
    la = c.box(xl, rows[2], "7×7 conv, 2 × (4×4 conv,\nstride 2)", "mask", w=w)
    lb = c.box(xl, rows[4], "ReLU, enc_n_down − 2 ×\n(4×4 conv, stride 2)", "mask", w=w)
    column([mt, la, lb])
    for box, key in ((mt, "M^t"), (la, "A"), (lb, "B")):
        c.note(box, sh(key), "left", down + 0.15)
    # style encoder
    style_text = [("$I^t$: RGB image", "tensor", "I^t"),
                  ("7×7 conv, 2 × (4×4 conv,\nstride 2)", "style", "style.head"),
                  ("SFT with $A$ (Eq. 1)\n$\\gamma(A)\\odot F + \\beta(A)$", "style", "SFT A"),
                  ("enc_n_down − 2 × (4×4\nconv, stride 2)", "style", "style.middle"),
                  ("SFT with $B$ (Eq. 1)\n$\\gamma(B)\\odot F + \\beta(B)$", "style", "SFT B"),
                  ("global average pool,\n1×1 conv", "style", None),
                  ("$s$: AdaIN parameters\n($\\gamma$, $\\beta$ of every norm)", "tensor", "style")]
    style = noted_column(xm, style_text)
    c.arrow(la.right(), style[2].left(), "feature $A$")
    c.arrow(lb.right(), style[4].left(), "feature $B$")
    # backbone
    bb_text = [("$M^t$ (editing: the\nedited mask $M^{src}$)", "tensor", "M^t"),
               ("7×7 conv, IN, ReLU", "backbone", "stem"),
               ("n_down × (3×3 conv,\nstride 2, IN, ReLU)", "backbone", "down"),
               ("n_blocks × AdaIN\nresidual block (Eq. 2)", "backbone", "blocks"),
               ("n_down × (3×3 transposed\nconv, IN, ReLU)", "backbone", "up"),
               ("7×7 conv, tanh", "backbone", None),
               ("$I^{out}$: RGB in [−1, 1]", "tensor", "I^out")]
    backbone = noted_column(xr, bb_text)
    c.arrow(style[6].right(), backbone[3].left(), "$s$", label_at=0.42, label_dx=-0.12)
    adain = ("AdaIN (Eq. 2), per channel,\nwith $\\gamma$, $\\beta$ read from $s$:\n"
             "$\\mathrm{AdaIN}(z) = \\gamma\\,(z - \\mu(z))\\,/\\,\\sigma(z) + \\beta$")
    c.ax.text(xl - w / 2 + 0.05, rows[5] + 0.25, adain, ha="left", va="top", fontsize=TEXT_PT, linespacing=1.5)
    settings = _settings(configs, lambda cfg: [("size", cfg.data.size), ("N", cfg.train.batch_size),
                                               ("ngf", cfg.model.dmn.ngf), ("n_down", cfg.model.dmn.n_down),
                                               ("n_blocks", cfg.model.dmn.n_blocks), ("enc_ch", cfg.model.dmn.enc_ch),
                                               ("enc_n_down", cfg.model.dmn.enc_n_down)])
    c.ax.set_title("Dense Mapping Network (Fig. 2): $I^{out} = G_A(\\mathrm{Enc}_{style}(I^t, M^t), M^t)$\n"
                   "shapes N×C×H×W computed by the kit's modules\n" + "\n".join(settings), fontsize=TITLE_PT)
    return c.fig


def ebst_diagram(configs):
    """One EBST iteration (Algorithm 1): the frozen MaskVAE's simulated edits, the DMN renderings in
    the style of ``(I^t, M^t)``, the alpha blender, the losses and which optimizer updates what,
    with shapes for each config (a :class:`Config` or ``{name: Config}``)."""
    configs = _as_configs(configs)
    shapes = {p: ebst_shapes(c) for p, c in configs.items()}
    lam = _settings(configs, lambda cfg: [("lambda_inter", cfg.train.lambda_inter)])
    c = _Canvas(11.4, 8.7)

    def sh(key):
        return _lines(shapes, key)
    H = 8.7
    # stage I
    c.band(0.05, H - 1.85, 11.35, H - 0.05, "stage I: reconstruct the face from its own mask", _COLORS["backbone"])
    y1 = H - 0.78
    s1_in = c.box(0.7, y1, "$M^t$, $I^t$", "tensor", w=1.2)
    s1_dmn = c.box(3.0, y1, "DMN\n$G_A(\\mathrm{Enc}_{style}(I^t, M^t), M^t)$", "backbone", w=2.6)
    s1_out = c.box(5.15, y1, "$I^{out}$", "tensor", w=0.9)
    s1_loss = c.box(7.25, y1, "Eq. 6 on $D(M^t, I^{out})$\nagainst $D(M^t, I^t)$", "loss", w=2.5)
    s1_opt = c.box(10.1, y1, "optimizer G: DMN,\nthen optimizer D: D", "opt", w=2.4)
    for a, b in ((s1_in, s1_dmn), (s1_dmn, s1_out), (s1_out, s1_loss), (s1_loss, s1_opt)):
        c.arrow(a.right(), b.left())
    c.note(s1_out, sh("I^out"))
    c.note(s1_loss, ["D predictions per scale:"] + sh("D predictions"))
    # stage II, first rows: the MaskVAE's simulated edits
    c.band(0.05, 0.05, 11.35, H - 2.0, "stage II: simulated edits from the frozen MaskVAE, rendered in the face's "
           "style, blended back", _COLORS["blend"])
    y_t, y_r = H - 2.75, H - 3.8
    span = dict(h=y_t - y_r + 0.62)
    mt = c.box(0.8, y_t, "$M^t$", "tensor", w=1.4)
    mref = c.box(0.8, y_r, "$M^{ref}$: another\nface's mask", "tensor", w=1.4)
    enc = c.box(2.5, (y_t + y_r) / 2, "$\\mathrm{Enc}_{VAE}$\n(frozen)", "frozen", w=1.0, **span)
    zt = c.box(3.875, y_t, "$z^t$", "tensor", w=0.75)
    zr = c.box(3.875, y_r, "$z^{ref}$", "tensor", w=0.75)
    zi = c.box(5.7, y_t, "$z^{inter} = z^t +$\n$(z^{ref} - z^t)\\,/\\,\\lambda_{inter}$", "frozen", w=1.9)
    zo = c.box(5.7, y_r, "$z^{outer} = z^t -$\n$(z^{ref} - z^t)\\,/\\,\\lambda_{inter}$", "frozen", w=1.9)
    dec = c.box(7.825, (y_t + y_r) / 2, "$\\mathrm{Dec}_{VAE}$\n(frozen),\nargmax,\none-hot", "frozen", w=1.35,
                **span)
    mi = c.box(9.5, y_t, "$M^{inter}$", "tensor", w=1.0)
    mo = c.box(9.5, y_r, "$M^{outer}$", "tensor", w=1.0)
    half = (y_t - y_r) / 2
    c.arrow(mt.right(), enc.left(half))
    c.arrow(mref.right(), enc.left(-half))
    c.arrow(enc.right(half), zt.left())
    c.arrow(enc.right(-half), zr.left())
    c.arrow(zt.right(), zi.left())
    c.arrow(zt.right(), zo.left(0.15))
    c.arrow(zr.right(), zo.left())
    c.arrow(zr.right(), zi.left(-0.15))
    c.arrow(zi.right(), dec.left(half))
    c.arrow(zo.right(), dec.left(-half))
    c.arrow(dec.right(half), mi.left())
    c.arrow(dec.right(-half), mo.left())
    c.note(mref, sh("M^ref"))
    c.note(zr, sh("z^ref"))
    c.note(zo, lam)
    c.note(dec, ["decoded masks:"] + sh("M^outer"))
    # stage II, next rows: rendering, blending (right to left), then the losses and updates
    y_i, y_o = H - 5.3, H - 6.25
    span, half = dict(h=y_i - y_o + 0.62), (y_i - y_o) / 2
    ren = c.box(9.95, (y_i + y_o) / 2, "DMN backbone $G_A$\nrenders $M^{inter}$, $M^{outer}$\nin the face's own style\n"
                "$s = \\mathrm{Enc}_{style}(I^t, M^t)$", "backbone", w=2.5, **span)
    c.arrow(mo.bottom(), (mo.x, ren.y + ren.h / 2))
    c.arrow(mi.right(), ren.top(0.75), rad=-0.15)
    c.note(ren, ["s:"] + sh("style"))
    ii = c.box(7.7, y_i, "$I^{inter}$", "tensor", w=0.9)
    io = c.box(7.7, y_o, "$I^{outer}$", "tensor", w=0.9)
    c.arrow(ren.left(half), ii.right())
    c.arrow(ren.left(-half), io.right())
    c.note(io, sh("I^inter"))
    blender = c.box(5.7, (y_i + y_o) / 2, "alpha blender $B$:\n$\\alpha = B(I^{inter}, I^{outer})$", "blend",
                    w=2.2, **span)
    c.arrow(ii.left(), blender.right(half))
    c.arrow(io.left(), blender.right(-half))
    c.note(blender, ["alpha:"] + sh("alpha"))
    blend = c.box(2.9, (y_i + y_o) / 2, "$I^{blend} = \\alpha\\, I^{inter}$\n$+\\, (1 - \\alpha)\\, I^{outer}$",
                  "blend", w=2.1)
    c.arrow(blender.left(), blend.right(), "$\\alpha$")
    c.note(blend, sh("I^blend"), "left", -0.55)
    y_c = y_o - 1.45
    loss = c.box(2.2, y_c, "Eq. 6 on $D(M^t, I^{blend})$\nagainst $D(M^t, I^t)$", "loss", w=2.6)
    c.arrow(blend.bottom(-0.7), loss.top(0.0))
    c.note(loss, ["D input (mask + image):"] + sh("D input"))
    opt = c.box(5.4, y_c, "optimizer GB: DMN +\nblender, then D", "opt", w=2.2)
    c.arrow(loss.right(), opt.left())
    c.box(8.0, y_c, "MaskVAE: frozen,\nin no optimizer", "frozen", w=1.9)
    c.box(10.25, y_c, "next: stage I again,\nthen stage II", "input", w=1.95)
    c.ax.set_title("One EBST iteration (Algorithm 1)\nshapes N×C×H×W computed by the kit's modules",
                   fontsize=TITLE_PT)
    return c.fig
