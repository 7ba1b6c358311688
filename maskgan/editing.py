"""Inference: edit faces through masks with trained networks (paper Sec. 3.3 "editing at test time").

At test time the DMN renders an *edited* mask ``M^src`` with the style of the original pair
``(I^t, M^t)``. The style vector depends only on ``(I^t, M^t)``, so :class:`Editor` computes it once
per reference face and caches it; every later frame (a brush stroke, a slider step) only runs the
backbone. The MaskVAE gives the latent space in which two faces' masks are interpolated
(``t`` in [0, 1]) or extrapolated (``t`` outside it; EBST's ``z^outer`` is ``t = -1/lambda_inter``).

    editor = Editor.from_run("runs/demo")             # EBST weights if trained, else stage I
    style = editor.style(image, label, key="face 3")  # cached under the key
    out = editor.render(edited_label, style)          # 3 x H x W in [-1, 1]
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch

from .config import Config
from .labels import one_hot
from .nn import build_dmn, build_maskvae, interpolate, logits_to_labels
from .train.checkpoint import latest_checkpoint, load_weights

__all__ = ["Editor", "find_stage_checkpoint", "load_run_config", "load_maskvae"]

GENERATOR_STAGES: tuple[str, ...] = ("ebst", "dmn")


def find_stage_checkpoint(run_dir: Path | str, stages=GENERATOR_STAGES) -> tuple[str, Path]:
    """The first stage among ``stages`` with a checkpoint in ``run_dir``, and that checkpoint."""
    run_dir = Path(run_dir)
    for stage in stages:
        ckpt = latest_checkpoint(run_dir / stage)
        if ckpt is not None:
            return stage, ckpt
    raise FileNotFoundError(
        f"{run_dir} has no trained {' or '.join(stages)} checkpoint; train it first "
        f"(notebooks 02/03, or `python -m maskgan train {stages[-1]} --run-dir {run_dir}`)")


def load_run_config(ckpt: Path | str) -> Config:
    """The :class:`Config` a checkpoint was trained with (its ``config.json``)."""
    return Config.from_dict(json.loads((Path(ckpt) / "config.json").read_text())["config"])


def load_maskvae(run_dir: Path | str, device: str = "cpu"):
    """The trained MaskVAE of a run (eval mode), with an error naming notebook 01 when missing."""
    from .runs import require_stage
    ckpt = require_stage(run_dir, "vae")
    return load_weights(build_maskvae(load_run_config(ckpt)), ckpt / "maskvae.safetensors").to(device).eval()


class Editor:
    """Trained DMN (+ optional MaskVAE) with a cache of style vectors, on one device."""

    def __init__(self, dmn, vae=None, device: str | torch.device = "cpu", cache_size: int = 64):
        self.device = torch.device(device)
        self.dmn = dmn.to(self.device).eval()
        self.vae = vae.to(self.device).eval() if vae is not None else None
        self._styles: OrderedDict[object, torch.Tensor] = OrderedDict()
        self.cache_size = cache_size
        self.stage = None

    @classmethod
    def from_run(cls, run_dir: Path | str, stage: str = "auto", device: str = "cpu") -> "Editor":
        """Load the DMN of ``stage`` (``"auto"``: EBST if trained, else stage I) and the MaskVAE."""
        stages = GENERATOR_STAGES if stage == "auto" else (stage,)
        found, ckpt = find_stage_checkpoint(run_dir, stages)
        cfg = load_run_config(ckpt)
        dmn = load_weights(build_dmn(cfg), ckpt / "dmn.safetensors")
        vae = load_maskvae(run_dir) if latest_checkpoint(Path(run_dir) / "vae") is not None else None
        editor = cls(dmn, vae, device)
        editor.stage = found
        editor.cfg = cfg
        return editor

    # --- style ---------------------------------------------------------------------------
    def _batch(self, image=None, label=None):
        if image is not None and image.dim() == 3:
            image = image.unsqueeze(0)
        if label is not None and label.dim() == 2:
            label = label.unsqueeze(0)
        return (None if image is None else image.to(self.device), None if label is None else label.to(self.device))

    @torch.no_grad()
    def style(self, image: torch.Tensor, label: torch.Tensor, key=None) -> torch.Tensor:
        """AdaIN parameters of a face ``(image 3xHxW in [-1,1], label HxW)``; cached under ``key``."""
        if key is not None and key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key]
        image, label = self._batch(image, label)
        style = self.dmn.style(image, one_hot(label))
        if key is not None:
            self._styles[key] = style
            while len(self._styles) > self.cache_size:
                self._styles.popitem(last=False)
        return style

    @torch.no_grad()
    def render(self, label: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The face of layout ``label`` (HxW or NxHxW) in ``style`` -> image(s) in [-1, 1]."""
        single = label.dim() == 2
        _, label = self._batch(None, label)
        out = self.dmn.render(one_hot(label), style)
        return out[0] if single else out

    def edit(self, image: torch.Tensor, label: torch.Tensor, edited_label: torch.Tensor, key=None) -> torch.Tensor:
        """Render ``edited_label`` in the style of ``(image, label)``: the kit's one-line edit."""
        return self.render(edited_label, self.style(image, label, key))

    # --- mask manifold (MaskVAE) ---------------------------------------------------------
    def _need_vae(self):
        if self.vae is None:
            raise RuntimeError("this editor has no MaskVAE: train it first (notebook 01, `python -m maskgan train vae`)")
        return self.vae

    @torch.no_grad()
    def encode(self, label: torch.Tensor) -> torch.Tensor:
        """Latent code (the mean ``mu``) of a label map."""
        _, label = self._batch(None, label)
        return self._need_vae().encode(one_hot(label))[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Label map(s) ``(N, H, W)`` decoded from latent codes."""
        return logits_to_labels(self._need_vae().decode(z))

    @torch.no_grad()
    def interpolate(self, label_a: torch.Tensor, label_b: torch.Tensor, t) -> torch.Tensor:
        """Decoded mask at ``z_a + t (z_b - z_a)``: t=0 is a's reconstruction, t=1 b's; any t allowed."""
        return self.decode(interpolate(self.encode(label_a), self.encode(label_b), t))[0]
