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
    """A matplotlib axes in diagram units, with boxes, arrows and shape notes."""

    def __init__(self, width: float, height: float, scale: float = 0.8):
        import matplotlib.pyplot as plt
        self.fig, self.ax = plt.subplots(figsize=(width * scale, height * scale))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_axis_off()

    def box(self, x, y, text, kind="input", w=2.2, h=0.95, size=8, bold=False) -> _Box:
        from matplotlib.patches import FancyBboxPatch
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                         fc=_COLORS[kind], ec="0.35", lw=0.9))
        self.ax.text(x, y, text, ha="center", va="center", fontsize=size, weight="bold" if bold else "normal")
        return _Box(x, y, w, h)

    def band(self, x0, y0, x1, y1, title, color):
        from matplotlib.patches import FancyBboxPatch
        self.ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02,rounding_size=0.2",
                                         fc=color, ec="none", alpha=0.35, zorder=0))
        self.ax.text(x0 + 0.12, y1 - 0.12, title, ha="left", va="top", fontsize=8.5, style="italic", color="0.2")

    def arrow(self, p, q, label=None, color="0.25", rad=0.0, ls="-", label_at=0.5, label_dy=0.14, size=7.5):
        self.ax.annotate("", xy=q, xytext=p, arrowprops=dict(
            arrowstyle="-|>", color=color, lw=1.1, ls=ls, shrinkA=1, shrinkB=1, mutation_scale=11,
            connectionstyle=f"arc3,rad={rad}"))
        if label:
            x = p[0] + (q[0] - p[0]) * label_at
            y = p[1] + (q[1] - p[1]) * label_at + label_dy
            self.ax.text(x, y, label, ha="center", va="bottom", fontsize=size, color=color)

    def note(self, box: _Box, lines: list[str], side: str = "below", dy: float = 0.05):
        """Shape lines next to a box: ``side`` is "below", "above" or "left"."""
        if not lines:
            return
        x, y, ha, va = {"below": (box.x, box.y - box.h / 2 - dy, "center", "top"),
                        "above": (box.x, box.y + box.h / 2 + dy, "center", "bottom"),
                        "left": (box.x - box.w / 2 - 0.1, box.y + dy, "right", "center")}[side]
        self.ax.text(x, y, "\n".join(lines), ha=ha, va=va, fontsize=7.2, family="monospace", color="0.15",
                     linespacing=1.15)


def _lines(shapes: dict[str, dict], key: str) -> list[str]:
    """One line per preset: ``"cpu   8x32x16x16"``."""
    width = max(len(p) for p in shapes)
    out = []
    for preset, sh in shapes.items():
        value = sh[key]
        text = " + ".join(fmt_shape(v) for v in value) if isinstance(value, list) else fmt_shape(value)
        out.append(f"{preset:<{width}} {text}".strip())
    return out


def _settings(configs: dict[str, Config], keys) -> str:
    parts = []
    for preset, cfg in configs.items():
        vals = ", ".join(f"{k} {v}" for k, v in keys(cfg))
        parts.append(f"{preset}: {vals}" if preset else vals)
    return "; ".join(parts)


def dmn_diagram(configs):
    """The Dense Mapping Network of Fig. 2 with the output shape of every part for each config
    (a :class:`Config`, or ``{name: Config}`` to compare presets, see :func:`with_paper`)."""
    configs = _as_configs(configs)
    shapes = {p: dmn_shapes(c) for p, c in configs.items()}
    c = _Canvas(20.5, 9.6)

    def sh(key):
        return _lines(shapes, key)
    c.band(0.1, 6.6, 14.3, 9.45, "label encoder (on the target mask $M^t$)", _COLORS["mask"])
    c.band(0.1, 3.35, 20.4, 6.4, "spatial-aware style encoder (on the target image $I^t$)", _COLORS["style"])
    c.band(0.1, 0.1, 20.4, 3.15, "backbone $G_A$: Pix2PixHD global generator with AdaIN residual blocks",
           _COLORS["backbone"])
    # label encoder
    mt = c.box(1.3, 8.2, "$M^t$\none-hot mask", "tensor")
    la = c.box(7.6, 8.2, "7x7 conv, 2 x (4x4 conv,\nstride 2)", "mask", w=2.6)
    lb = c.box(12.6, 8.2, "ReLU, enc_n_down - 2 x\n(4x4 conv, stride 2)", "mask", w=2.6)
    c.arrow(mt.right(), la.left())
    c.arrow(la.right(), lb.left(), "$A$")
    c.note(mt, sh("M^t"))
    c.note(lb, sh("B"), side="above")
    # style encoder
    it = c.box(1.3, 5.0, "$I^t$\nRGB image", "tensor")
    head = c.box(4.4, 5.0, "7x7 conv, 2 x (4x4 conv,\nstride 2)", "style", w=2.6)
    sa = c.box(7.6, 5.0, "SFT A (Eq. 1)\n$\\gamma(A)\\odot F + \\beta(A)$", "style")
    mid = c.box(10.1, 5.0, "enc_n_down - 2 x\n(4x4 conv, stride 2)", "style")
    sb = c.box(12.6, 5.0, "SFT B (Eq. 1)\n$\\gamma(B)\\odot F + \\beta(B)$", "style")
    pool = c.box(15.4, 5.0, "global average pool,\n1x1 conv", "style", w=2.5)
    sv = c.box(18.6, 5.0, "$s$: AdaIN parameters\n($\\gamma$, $\\beta$ of every norm)", "tensor", w=2.8)
    for a, b in ((it, head), (head, sa), (sa, mid), (mid, sb), (sb, pool), (pool, sv)):
        c.arrow(a.right(), b.left())
    c.arrow(la.bottom(), sa.top(), "feature $A$", label_at=0.3, label_dy=0.0)
    c.arrow(lb.bottom(), sb.top(), "feature $B$", label_at=0.3, label_dy=0.0)
    c.note(la, sh("A"))
    for box, key in ((it, "I^t"), (head, "style.head"), (sa, "SFT A"), (mid, "style.middle"), (sb, "SFT B"),
                     (sv, "style")):
        c.note(box, sh(key))
    # backbone
    m2 = c.box(1.3, 1.9, "$M^t$ (editing: the\nedited mask $M^{src}$)", "tensor", w=2.3)
    stem = c.box(4.1, 1.9, "7x7 conv, IN, ReLU", "backbone")
    down = c.box(6.9, 1.9, "n_down x (3x3 conv,\nstride 2, IN, ReLU)", "backbone")
    blocks = c.box(10.1, 1.9, "n_blocks x AdaIN\nresidual block (Eq. 2)", "backbone", w=2.5)
    up = c.box(13.3, 1.9, "n_down x (3x3 transposed\nconv, IN, ReLU)", "backbone", w=2.6)
    head_out = c.box(16.2, 1.9, "7x7 conv, tanh", "backbone")
    out = c.box(18.9, 1.9, "$I^{out}$\nRGB in [-1, 1]", "tensor")
    for a, b in ((m2, stem), (stem, down), (down, blocks), (blocks, up), (up, head_out), (head_out, out)):
        c.arrow(a.right(), b.left())
    c.arrow((sv.x - 0.6, sv.y - sv.h / 2 - 0.62), blocks.top(0.5),
            "AdaIN$(z) = \\gamma\\,(z - \\mu(z))\\,/\\,\\sigma(z) + \\beta$", rad=0.0, label_at=0.8, label_dy=0.25)
    for box, key in ((m2, "M^t"), (stem, "stem"), (down, "down"), (blocks, "blocks"), (up, "up"), (out, "I^out")):
        c.note(box, sh(key))
    settings = _settings(configs, lambda cfg: [("size", cfg.data.size), ("N", cfg.train.batch_size),
                                               ("ngf", cfg.model.dmn.ngf), ("n_down", cfg.model.dmn.n_down),
                                               ("n_blocks", cfg.model.dmn.n_blocks), ("enc_ch", cfg.model.dmn.enc_ch),
                                               ("enc_n_down", cfg.model.dmn.enc_n_down)])
    c.ax.set_title("Dense Mapping Network (Fig. 2): $I^{out} = G_A(\\mathrm{Enc}_{style}(I^t, M^t), M^t)$; "
                   "shapes N\u00d7C\u00d7H\u00d7W computed by the kit's modules\n" + settings, fontsize=10)
    c.fig.tight_layout()
    return c.fig


def ebst_diagram(configs):
    """One EBST iteration (Algorithm 1): the frozen MaskVAE's simulated edits, the DMN renderings in
    the style of ``(I^t, M^t)``, the alpha blender, the losses and which optimizer updates what,
    with shapes for each config (a :class:`Config` or ``{name: Config}``)."""
    configs = _as_configs(configs)
    shapes = {p: ebst_shapes(c) for p, c in configs.items()}
    lam = _settings(configs, lambda cfg: [("lambda_inter", cfg.train.lambda_inter)])
    c = _Canvas(23.0, 11.0)

    def sh(key):
        return _lines(shapes, key)
    c.band(0.1, 8.55, 22.9, 10.85, "stage I: reconstruct the face from its own mask", _COLORS["backbone"])
    c.band(0.1, 0.1, 22.9, 8.35, "stage II: simulated edits from the frozen MaskVAE, rendered in the face's style, "
           "blended back to the face", _COLORS["blend"])
    # stage I
    s1_in = c.box(1.4, 9.6, "$M^t$, $I^t$", "tensor")
    s1_dmn = c.box(4.8, 9.6, "DMN\n$G_A(\\mathrm{Enc}_{style}(I^t, M^t), M^t)$", "backbone", w=3.2)
    s1_out = c.box(8.4, 9.6, "$I^{out}$", "tensor", w=1.8)
    s1_loss = c.box(12.5, 9.6, "Eq. 6 on $D(M^t, I^{out})$\nagainst $D(M^t, I^t)$", "loss", w=3.2)
    s1_opt = c.box(18.0, 9.6, "optimizer G: DMN,\nthen optimizer D: discriminator", "opt", w=4.0)
    for a, b in ((s1_in, s1_dmn), (s1_dmn, s1_out), (s1_out, s1_loss), (s1_loss, s1_opt)):
        c.arrow(a.right(), b.left())
    c.note(s1_out, sh("I^out"))
    c.note(s1_loss, ["D predictions per scale:"] + sh("D predictions"))
    # stage II, first rows: the MaskVAE's simulated edits
    y_t, y_r, y_mid = 6.85, 4.85, 5.85
    mt = c.box(1.3, y_t, "$M^t$", "tensor", w=1.6)
    mref = c.box(1.3, y_r, "$M^{ref}$ (another\ntraining mask)", "tensor", w=2.0)
    enc = c.box(4.0, y_mid, "$\\mathrm{Enc}_{VAE}$\n(frozen)", "frozen", w=1.8, h=2.9)
    zt = c.box(6.6, y_t, "$z^t$", "tensor", w=1.6)
    zr = c.box(6.6, y_r, "$z^{ref}$", "tensor", w=1.6)
    zi = c.box(9.9, y_t, "$z^{inter} = z^t + (z^{ref} - z^t)\\,/\\,\\lambda_{inter}$", "frozen", w=3.9)
    zo = c.box(9.9, y_r, "$z^{outer} = z^t - (z^{ref} - z^t)\\,/\\,\\lambda_{inter}$", "frozen", w=3.9)
    dec = c.box(13.3, y_mid, "$\\mathrm{Dec}_{VAE}$ (frozen),\nargmax, one-hot", "frozen", w=2.2, h=2.9)
    mi = c.box(16.0, y_t, "$M^{inter}$", "tensor", w=1.7)
    mo = c.box(16.0, y_r, "$M^{outer}$", "tensor", w=1.7)
    c.arrow(mt.right(), enc.left(1.0))
    c.arrow(mref.right(), enc.left(-1.0))
    c.arrow(enc.right(1.0), zt.left())
    c.arrow(enc.right(-1.0), zr.left())
    c.arrow(zt.right(), zi.left())
    c.arrow(zt.right(), zo.left(0.2))
    c.arrow(zr.right(), zo.left())
    c.arrow(zr.right(), zi.left(-0.2))
    c.arrow(zi.right(), dec.left(1.0))
    c.arrow(zo.right(), dec.left(-1.0))
    c.arrow(dec.right(1.0), mi.left())
    c.arrow(dec.right(-1.0), mo.left())
    c.note(mref, sh("M^ref"))
    c.note(zr, sh("z^ref"))
    c.note(zo, [lam])
    c.note(mo, sh("M^outer"))
    # stage II: rendering, blending, losses, updates
    style = c.box(20.6, 7.55, "$s = \\mathrm{Enc}_{style}(I^t, M^t)$\n(the face's own style)", "style", w=3.6)
    ren = c.box(20.0, 5.5, "DMN backbone $G_A$:\nrender $M^{inter}$ and\n$M^{outer}$ with style $s$", "backbone",
                w=3.0, h=1.7)
    c.arrow(mi.right(), ren.left(0.45))
    c.arrow(mo.right(), ren.left(-0.45))
    c.arrow(style.bottom(-0.6), ren.top(0.0))
    c.note(style, sh("style"), side="left", dy=0.25)
    ii = c.box(21.4, 3.0, "$I^{inter}$", "tensor", w=1.6)
    io = c.box(18.6, 3.0, "$I^{outer}$", "tensor", w=1.6)
    c.arrow(ren.bottom(1.0), ii.top())
    c.arrow(ren.bottom(-1.0), io.top())
    blender = c.box(15.0, 3.0, "alpha blender $B$\n$\\alpha = B(I^{inter}, I^{outer})$", "blend", w=3.2)
    c.arrow(io.left(), blender.right())
    c.arrow(ii.bottom(), blender.bottom(1.2), rad=-0.25)
    c.note(ii, sh("I^inter"))
    blend = c.box(10.6, 3.0, "$I^{blend} = \\alpha\\, I^{inter}$\n$+ (1 - \\alpha)\\, I^{outer}$", "blend", w=3.2)
    c.arrow(blender.left(), blend.right(), "$\\alpha \\in (0, 1)$")
    c.note(blender, ["alpha:"] + sh("alpha"))
    c.note(blend, sh("I^blend"))
    loss = c.box(6.0, 3.0, "Eq. 6 on $D(M^t, I^{blend})$\nagainst $D(M^t, I^t)$", "loss", w=3.4)
    c.arrow(blend.left(), loss.right())
    c.note(loss, ["D input (mask + image):"] + sh("D input"))
    opt = c.box(6.0, 0.85, "optimizer GB: DMN + blender,\nthen optimizer D: discriminator", "opt", w=4.4)
    c.arrow((loss.x, loss.y - loss.h / 2 - 0.75), opt.top())
    c.box(13.2, 0.85, "MaskVAE: in no optimizer\n(frozen, eval mode)", "frozen", w=3.6)
    c.box(19.4, 0.85, "next iteration: stage I again,\nthen stage II, until the end", "input", w=3.8)
    c.ax.set_title("One EBST iteration (Algorithm 1); shapes N\u00d7C\u00d7H\u00d7W computed by the kit's modules; "
                   + lam, fontsize=10)
    c.fig.tight_layout()
    return c.fig
