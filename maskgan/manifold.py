"""Walking the MaskVAE's latent space (paper Sec. 3.2; Algorithm 1's simulated edits), MaskVAE only.

Why do ``z^inter = z^t + (z^ref - z^t) / lambda_inter`` and ``z^outer = z^t - (z^ref - z^t) /
lambda_inter`` decode to *plausible* masks, the kind a user might draw? Because the MaskVAE was
trained to decode every code near the codes of real masks into a whole mask (Eq. 3-5: the KL term
keeps the codes of real masks in one connected region). Moving along a line in that space moves
and reshapes whole parts; in pixel space the only thing "between" two masks is a cut from one to
the other. These functions make that visible for notebook 02, before any DMN exists:

* :func:`latent_path` and :func:`pixel_path`: the masks along ``t`` in both spaces;
* :func:`changed_fraction`: how much of a mask differs from a reference along the path;
* :func:`simulated_edits`: EBST's ``M^inter`` / ``M^outer`` for pairs of training masks, exactly as
  :meth:`maskgan.train.gan.EBSTTrainer.simulated_edits` computes them;
* :func:`edit_sizes` and :func:`edit_size_figure`: how large the simulated edits are, next to the
  sizes of SynthFaces' ground-truth edits.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .labels import one_hot
from .nn import interpolate, logits_to_labels, simulated_codes

__all__ = ["latent_path", "pixel_path", "changed_fraction", "simulated_edits", "edit_sizes", "path_change_figure",
           "edit_size_figure"]


def _labels(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x.unsqueeze(0) if x.dim() == 2 else x


def _device(vae) -> torch.device:
    return next(vae.parameters()).device


@torch.no_grad()
def latent_path(vae, label_a, label_b, ts: Sequence[float]) -> torch.Tensor:
    """Decoded masks ``(T, H, W)`` along ``z(t) = z_a + t (z_b - z_a)`` (``z = mu``, the MaskVAE in eval mode)."""
    vae.eval()
    labels = torch.cat([_labels(label_a), _labels(label_b)]).to(_device(vae))
    mu = vae.encode(one_hot(labels))[0]
    z = torch.cat([interpolate(mu[:1], mu[1:], float(t)) for t in ts])
    return logits_to_labels(vae.decode(z)).cpu()


def pixel_path(label_a, label_b, ts: Sequence[float]) -> torch.Tensor:
    """The same walk in pixel space: ``argmax((1 - t) onehot(a) + t onehot(b))`` per pixel, ``(T, H, W)``.
    Every pixel jumps from a's class to b's at ``t = 0.5``; outside [0, 1] nothing changes at all."""
    a, b = one_hot(_labels(label_a)), one_hot(_labels(label_b))
    return torch.cat([((1 - t) * a + t * b).argmax(1) for t in ts])


def changed_fraction(masks: torch.Tensor, reference) -> torch.Tensor:
    """Fraction of pixels of each mask ``(T, H, W)`` whose class differs from ``reference``: one
    mask ``(H, W)`` for all, or one per mask ``(T, H, W)``."""
    return (masks != torch.as_tensor(reference)).float().flatten(1).mean(1)


@torch.no_grad()
def simulated_edits(vae, labels, ref_labels, lambda_inter: float = 2.5) -> dict[str, torch.Tensor]:
    """Algorithm 1's simulated edits for a batch: ``{"z_t", "z_ref", "M^t_decoded", "M^inter", "M^outer"}``
    (label maps ``(N, H, W)`` and codes ``(N, latent)``)."""
    vae.eval()
    dev = _device(vae)
    z_t, z_ref, z_inter, z_outer = simulated_codes(vae, one_hot(_labels(labels).to(dev)),
                                                   one_hot(_labels(ref_labels).to(dev)), lambda_inter)
    decoded = logits_to_labels(vae.decode(torch.cat([z_t, z_inter, z_outer])))
    recon, inter, outer = decoded.cpu().chunk(3)
    return {"z_t": z_t.cpu(), "z_ref": z_ref.cpu(), "M^t_decoded": recon, "M^inter": inter, "M^outer": outer}


@torch.no_grad()
def edit_sizes(vae, dataset, lambda_inter: float = 2.5, n: int = 64, seed: int = 0,
               synthfaces_size: int | None = None, per_family: int = 4) -> dict[str, list[float]]:
    """How many pixels a simulated edit changes, over ``n`` random (M^t, M^ref) pairs of ``dataset``.

    ``"inter"`` / ``"outer"``: fraction of pixels of ``M^inter`` / ``M^outer`` that differ from the
    MaskVAE's own decoding of ``z^t`` (the edit itself, without the reconstruction error);
    ``"recon"``: that decoding against ``M^t`` (the reconstruction error); with ``synthfaces_size``,
    ``"synthfaces edits"``: the same fraction for SynthFaces' ground-truth edits (``per_family`` pairs
    of every edit family of the test split), the size of edits a person would make.
    """
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(dataset), (2, n), generator=g)
    label = dataset.label if hasattr(dataset, "label") else (lambda i: dataset[i]["label"])
    sizes: dict[str, list[float]] = {"inter": [], "outer": [], "recon": []}
    for start in range(0, n, 32):
        a = torch.stack([label(int(i)) for i in idx[0, start:start + 32]])
        b = torch.stack([label(int(i)) for i in idx[1, start:start + 32]])
        e = simulated_edits(vae, a, b, lambda_inter)
        sizes["inter"] += changed_fraction(e["M^inter"], e["M^t_decoded"]).tolist()
        sizes["outer"] += changed_fraction(e["M^outer"], e["M^t_decoded"]).tolist()
        sizes["recon"] += changed_fraction(e["M^t_decoded"], a).tolist()
    if synthfaces_size:
        from .data import synthfaces as sf
        sizes["synthfaces edits"] = [
            float((torch.as_tensor(p["edited_label"]) != torch.as_tensor(p["label"])).float().mean())
            for family in sf.EDIT_FAMILIES for i in range(per_family)
            for p in [sf.edit_pair(family, "test", i, synthfaces_size)]]
    return sizes


def path_change_figure(ts: Sequence[float], curves: dict[str, torch.Tensor], marks: dict[str, float] | None = None,
                       title: str = ""):
    """Fraction of pixels that differ from mask a along ``t``, one line per walk (latent, pixel)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    for name, values in curves.items():
        ax.plot(list(ts), torch.as_tensor(values).tolist(), marker="o", ms=2.5, lw=1.3, label=name)
    for name, t in (marks or {}).items():
        ax.axvline(t, color="0.5", ls="--", lw=0.8)
        ax.text(t, ax.get_ylim()[0], f" {name}", fontsize=7, va="bottom", ha="right", rotation=90, color="0.3")
    ax.set_xlabel("t in z(t) = z_a + t (z_b - z_a)")
    ax.set_ylabel("pixels differing from mask a")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "How the mask changes along the walk", fontsize=10)
    fig.tight_layout()
    return fig


def edit_size_figure(sizes: dict[str, list[float]], lambda_inter: float):
    """Histograms of :func:`edit_sizes`: simulated edits against the reconstruction error and the
    ground-truth edits."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    names = [k for k in ("recon", "inter", "outer", "synthfaces edits") if sizes.get(k)]
    titles = {"recon": "decoded z^t vs M^t (reconstruction error)", "inter": "M^inter vs decoded z^t",
              "outer": "M^outer vs decoded z^t", "synthfaces edits": "SynthFaces ground-truth edits"}
    top = max(max(sizes[k]) for k in names) or 1.0
    bins = [top * i / 24 for i in range(25)]
    for k in names:
        ax.hist(sizes[k], bins=bins, histtype="step", lw=1.5, density=True, label=titles[k])
    ax.set_xlabel("fraction of pixels changed")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title(f"How big is a simulated edit? (lambda_inter = {lambda_inter:g})", fontsize=10)
    fig.tight_layout()
    return fig
