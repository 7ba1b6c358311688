"""Pictures: image/mask grids, the label legend, class-frequency charts, saved atomically.

Every figure function returns a matplotlib ``Figure`` (shown inline in a notebook) and
:func:`save_figure` writes it to the run directory, so headless papermill runs keep the pictures.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from .io import atomic_write_bytes
from .labels import CLASS_NAMES, PALETTE, colorize

__all__ = ["to_uint8", "as_rgb", "png_bytes", "image_grid", "label_legend", "class_frequency_figure", "loss_curves", "save_gif",
           "save_figure", "sft_maps_figure", "adain_parameters_figure"]


def to_uint8(image) -> np.ndarray:
    """A float image in [-1, 1] (torch C x H x W or numpy H x W x C) -> uint8 H x W x 3."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    arr = (np.clip(arr, -1.0, 1.0) + 1.0) * 127.5
    return np.round(arr).astype(np.uint8)


def as_rgb(x) -> np.ndarray:
    """Anything the kit shows -> uint8 H x W x 3: label maps (2-D integer) are colourised."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.integer):
        return colorize(arr)
    return to_uint8(arr)


def png_bytes(x) -> bytes:
    """Encode an image or label map as PNG bytes (for ipywidgets.Image)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(as_rgb(x)).save(buf, format="PNG")
    return buf.getvalue()


def _new_figure(figsize: tuple[float, float], pyplot: bool = True):
    """A new matplotlib figure: through pyplot (a notebook shows it inline), or with ``pyplot=False``
    a bare ``Figure`` that pyplot does not track, for pictures that are only saved (the sample grids
    of training). The bare one never touches the process's backend: switching it to Agg in a
    notebook kernel (as training once did) silently stops every later figure from being shown."""
    if pyplot:
        import matplotlib.pyplot as plt
        return plt.figure(figsize=figsize)
    from matplotlib.figure import Figure
    return Figure(figsize=figsize)  # savefig renders PNG through Agg without selecting a backend


def image_grid(rows: Sequence[Sequence], col_titles: Sequence[str] | None = None,
               row_titles: Sequence[str] | None = None, cell: float = 1.5, title: str | None = None,
               pyplot: bool = True):
    """A grid of images and/or label maps (each cell through :func:`as_rgb`). ``pyplot=False``: a
    figure for :func:`save_figure` only, never shown and never closed (see :func:`_new_figure`)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig = _new_figure((cell * n_cols, cell * n_rows + (0.4 if title else 0)), pyplot)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(row) and row[c] is not None:
                ax.imshow(as_rgb(row[c]), interpolation="nearest")
            if r == 0 and col_titles and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=8)
            if c == 0 and row_titles and r < len(row_titles):
                ax.set_ylabel(row_titles[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def label_legend(counts: dict[str, float] | None = None):
    """The 19 classes with their id, name and palette colour (optionally a number per class)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    ax.set_axis_off()
    cols = 4
    for i, name in enumerate(CLASS_NAMES):
        r, c = divmod(i, cols)
        x, y = c * 1.0, -r * 0.5
        ax.add_patch(plt.Rectangle((x, y), 0.16, 0.32, color=PALETTE[i] / 255.0, ec="0.5", lw=0.5))
        text = f"{i:2d} {name}" + (f" ({counts[name]:.2f})" if counts and name in counts else "")
        ax.text(x + 0.22, y + 0.16, text, va="center", fontsize=8, family="monospace")
    ax.set_xlim(-0.05, cols)
    ax.set_ylim(-((len(CLASS_NAMES) - 1) // cols) * 0.5 - 0.1, 0.45)
    ax.set_title("CelebAMask-HQ classes (id, name): later ids are painted over earlier ones", fontsize=9)
    fig.tight_layout()
    return fig


def class_frequency_figure(presence: dict[str, float], share: dict[str, float] | None = None, title: str = ""):
    """Bar chart: fraction of faces containing each class (and its mean pixel share)."""
    import matplotlib.pyplot as plt
    names = list(CLASS_NAMES)
    fig, axes = plt.subplots(1, 2 if share else 1, figsize=(11 if share else 6, 3.4), squeeze=False)
    colors = PALETTE / 255.0
    axes[0][0].bar(range(len(names)), [presence.get(n, 0.0) for n in names], color=colors, edgecolor="0.3")
    axes[0][0].set_ylabel("fraction of faces")
    axes[0][0].set_ylim(0, 1.05)
    if share:
        axes[0][1].bar(range(len(names)), [share.get(n, 0.0) for n in names], color=colors, edgecolor="0.3")
        axes[0][1].set_ylabel("mean pixel share")
        axes[0][1].set_yscale("log")
    for ax in axes[0]:
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=70, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path | str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically (parent folders created)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def loss_curves(records: Sequence[dict], keys: Sequence[str] | None = None, title: str = "", smooth: float = 0.9):
    """Loss terms against the step, from a stage's ``log.jsonl`` records (EMA-smoothed line over
    the raw values). Terms that are zero in every record (a loss switched off by its weight, e.g.
    ``g_percept`` at the cpu preset) are left out."""
    import matplotlib.pyplot as plt
    if not records:
        raise ValueError("no log records to plot: has the stage trained yet?")
    keys = list(keys or [k for k in records[-1] if k not in ("step", "lr")])
    keys = [k for k in keys if any(r.get(k, 0.0) != 0.0 for r in records)] or keys
    cols = min(4, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, key in zip(axes.flat, keys):
        values = [r.get(key, float("nan")) for r in records]
        ema, smoothed = values[0], []
        for v in values:
            ema = smooth * ema + (1 - smooth) * v
            smoothed.append(ema)
        ax.plot(steps, values, color="0.8", lw=0.8)
        ax.plot(steps, smoothed, lw=1.5)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_gif(frames: Sequence, path: Path | str, duration_ms: int = 120, scale: int = 2) -> Path:
    """Save frames (images or label maps) as an animated GIF that loops, atomically."""
    from PIL import Image
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    images = [Image.fromarray(as_rgb(f)) for f in frames]
    if scale != 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return atomic_write_bytes(path, buf.getvalue())


def sft_maps_figure(image, label, gamma, beta, channels: Sequence[int], title: str = ""):
    """The per-pixel modulation of one SFT layer (Eq. 1): the face, its mask, and the ``gamma`` and
    ``beta`` maps ``(C, h, w)`` of the chosen ``channels`` (a diverging colour map per map)."""
    import matplotlib.pyplot as plt
    cols = 2 + len(channels)
    fig, axes = plt.subplots(2, cols, figsize=(2 * cols, 4.4), squeeze=False)
    for row, (name, maps) in enumerate((("\u03b3", gamma), ("\u03b2", beta))):
        axes[row][0].imshow(as_rgb(image))
        axes[row][0].set_title("image", fontsize=8)
        axes[row][1].imshow(as_rgb(label), interpolation="nearest")
        axes[row][1].set_title("mask", fontsize=8)
        for k, ch in enumerate(channels):
            ax = axes[row][2 + k]
            im = ax.imshow(maps[ch].detach().float().cpu().numpy(), cmap="RdBu_r")
            ax.set_title(f"{name} channel {ch}", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.046, format="%.2g")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "SFT: per-pixel modulation predicted from the mask (Eq. 1)")
    fig.tight_layout()
    return fig


def adain_parameters_figure(params_a: dict, params_b: dict, prefix: str = "block0", labels=("face A", "face B")):
    """The AdaIN parameters (Eq. 2) of two faces, one panel per ``<prefix>.norm<k>.{gamma,beta}`` entry
    of :func:`maskgan.inspection.adain_parameters`: value against channel."""
    import matplotlib.pyplot as plt
    keys = [k for k in params_a if k.startswith(prefix + ".")]
    if not keys:
        raise ValueError(f"no AdaIN parameters named {prefix}.*; the names are like {next(iter(params_a), '-')}")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6), squeeze=False)
    for ax, k in zip(axes[0], keys):
        for params, name in zip((params_a, params_b), labels):
            ax.plot(params[k].detach().float().cpu().numpy(), lw=0.8, label=name)
        ax.set_title(k, fontsize=8)
        ax.set_xlabel("channel", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig
