"""Inference: edit faces through masks with trained networks (paper Sec. 3.3 "editing at test time").

At test time the DMN renders an *edited* mask ``M^src`` with the style of the original pair
``(I^t, M^t)``. The style vector depends only on ``(I^t, M^t)``, so :class:`Editor` computes it once
per reference face and caches it; every later frame (a brush stroke, a slider step) only runs the
backbone. The MaskVAE gives the latent space in which two faces' masks are interpolated
(``t`` in [0, 1]) or extrapolated (``t`` outside it; EBST's ``z^outer`` is ``t = -1/lambda_inter``).

    editor = Editor.from_run("runs/demo")             # EBST weights if trained, else stage I
    out = editor.edit(image, label, edited_label)     # the edit, composited into the input (maskgan.composite)
    full = editor.rerender(image, label, edited_label)  # the paper's edit: the whole face re-rendered
    style = editor.style(image, label, key="face 3")  # cached under the key
    out = editor.render(edited_label, style)          # 3 x H x W in [-1, 1]
    fast = editor.render_preview(edited_label, style)  # the same at half size, upsampled (while painting)
    faces = editor.open_faces("my_faces/")             # a folder of faces at this model's size
    editor.precision = "fp32"                          # or "bf16" / "auto" (maskgan.precision)

Frames render in bfloat16 on a CPU with bfloat16 matrix units (``precision="auto"``, the default:
:mod:`maskgan.precision`, numbers in ``docs/speed.md``); the cached styles stay float32.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from .composite import DEFAULT_BLEND, Composite, check_blend, composite
from .errors import ConfigError, DataError, StageMissing
from .labels import NUM_CLASSES, one_hot
from .nn import interpolate, logits_to_labels
from .precision import InferenceNet, resolve
from .run import Run
from .stages import generator_stages, get_stage

__all__ = ["Editor", "as_image", "as_label", "preview_label", "preview_psnr"]


def as_image(image, name: str = "image") -> torch.Tensor:
    """A face image as the kit's float32 tensor ``3 x H x W`` (or ``N x 3 x H x W``) in [-1, 1].

    Takes a torch tensor or a numpy array; a uint8 array ``H x W x 3`` (as read from a file) is
    converted. Values outside [-1, 1] (e.g. 0..255 floats) or NaN are an error naming ``name``."""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8:
            from .data.tensors import image_to_tensor
            if image.ndim != 3 or image.shape[2] != 3:
                raise DataError(f"{name}: a uint8 image must be H x W x 3 (RGB), got shape {image.shape}")
            return image_to_tensor(image)
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise DataError(f"{name} must be a torch tensor or a numpy array, got {type(image).__name__}")
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise DataError(f"{name} must have shape (3, H, W) or (N, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise DataError(f"{name} must be a float tensor in [-1, 1] (or a uint8 H x W x 3 array), got {image.dtype}")
    if image.numel() == 0:
        raise DataError(f"{name} is empty (shape {tuple(image.shape)}); expected at least one face of at least "
                        "1x1 pixels")
    if torch.isnan(image).any():
        raise DataError(f"{name} contains NaN values")
    lo, hi = float(image.min()), float(image.max())
    if lo < -1.001 or hi > 1.001:
        raise DataError(f"{name} has values in [{lo:.3g}, {hi:.3g}]; the kit's images are in [-1, 1] "
                        "(x / 127.5 - 1 for 8-bit values)")
    return image.float()


def as_label(label, name: str = "label") -> torch.Tensor:
    """A label map as an int64 tensor ``H x W`` (or ``N x H x W``) of class ids 0..18, from torch or numpy."""
    if isinstance(label, np.ndarray):
        label = torch.from_numpy(np.ascontiguousarray(label))
    if not isinstance(label, torch.Tensor):
        raise DataError(f"{name} must be a torch tensor or a numpy array, got {type(label).__name__}")
    if label.is_floating_point() or label.dtype == torch.bool:
        raise DataError(f"{name} must hold integer class ids 0..18, got dtype {label.dtype}")
    if label.dim() not in (2, 3):
        raise DataError(f"{name} must have shape (H, W) or (N, H, W), got {tuple(label.shape)}")
    if label.numel() == 0:
        raise DataError(f"{name} is empty (shape {tuple(label.shape)}); expected at least one label map of at least "
                        "1x1 pixels")
    lo, hi = int(label.min()), int(label.max())
    if lo < 0 or hi >= NUM_CLASSES:
        bad = sorted({int(v) for v in label.unique() if not 0 <= int(v) < NUM_CLASSES})[:8]
        raise DataError(f"{name} has label values {bad}; CelebAMask-HQ labels are 0..{NUM_CLASSES - 1}")
    return label.long()


def _check_t(t) -> None:
    """``t`` of :meth:`Editor.interpolate`: a finite real number (or a tensor of them)."""
    if isinstance(t, torch.Tensor):
        if not t.is_floating_point() and t.dtype not in (torch.int32, torch.int64):
            raise ConfigError(f"t must be a number or a float tensor, got a {t.dtype} tensor")
        if t.numel() == 0 or not bool(torch.isfinite(t.float()).all()):
            raise ConfigError(f"t must be finite numbers (t = 0: face A's mask, t = 1: face B's), got {t}")
        return
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not math.isfinite(t):
        raise ConfigError(f"t must be a finite number (t = 0: face A's mask, t = 1: face B's; beyond [0, 1] "
                          f"extrapolates), got {t!r}")


def _check_style(style, n: int) -> None:
    """A style vector for :meth:`Editor.render`: a float tensor ``(1 or n, D)`` with finite values."""
    if not isinstance(style, torch.Tensor) or not style.is_floating_point():
        raise DataError(f"style must be the float tensor that Editor.style(image, label) returns, got "
                        f"{type(style).__name__ if not isinstance(style, torch.Tensor) else style.dtype}")
    if style.dim() != 2 or style.shape[0] not in (1, n):
        raise DataError(f"style has shape {tuple(style.shape)}; expected (1, D) or ({n}, D) as Editor.style returns")
    if not bool(torch.isfinite(style).all()):
        raise DataError("style has NaN or infinite values; compute it with Editor.style(image, label) from a "
                        "finite image")


def preview_label(label: torch.Tensor, factor: int) -> torch.Tensor:
    """A label map ``(..., H, W)`` at ``1/factor`` of its size: the centre label of every
    ``factor x factor`` cell (nearest, so no new ids)."""
    if factor == 1:
        return label
    off = factor // 2
    return label[..., off::factor, off::factor].contiguous()


class Editor:
    """Trained DMN (+ optional MaskVAE) with a cache of style vectors, on one device, rendering at
    ``precision`` (``"auto"``, ``"fp32"`` or ``"bf16"``; see :attr:`precision`)."""

    def __init__(self, dmn, vae=None, device: str | torch.device = "cpu", cache_size: int = 64,
                 precision: str = "auto"):
        from .device import resolve_device
        self.device = resolve_device(device)  # "cuda" on a machine without it: a ConfigError, not an AssertionError
        self.dmn = dmn.to(self.device).eval()
        self._net = None
        self.precision = precision
        self.vae = vae.to(self.device).eval() if vae is not None else None
        self._styles: OrderedDict[object, torch.Tensor] = OrderedDict()
        self.cache_size = cache_size
        self.stage = None
        self.cfg = None
        self.source = None  # where the weights come from (a run directory, "pretrained", ...)
        self.resample = "lanczos"  # how open_faces resizes faces ("bicubic" for the authors' imported generator)

    @property
    def precision(self) -> str:
        """The precision frames render in, ``"fp32"`` or ``"bf16"``. Set it to ``"auto"``, ``"fp32"``
        or ``"bf16"`` at any time (:func:`maskgan.precision.resolve`: bf16 where the device lacks it
        falls back to fp32 with one line saying so); cached styles stay valid."""
        return self._net.precision

    @precision.setter
    def precision(self, value: str) -> None:
        chosen = resolve(value, self.device)
        if self._net is None or self._net.net is not self.dmn or self._net.precision != chosen:
            self._net = InferenceNet(self.dmn, chosen)

    def _inference(self) -> InferenceNet:
        if self._net.net is not self.dmn:  # editor.dmn was replaced: the same precision for the new one
            self._net = InferenceNet(self.dmn, self._net.precision)
        return self._net

    @classmethod
    def from_run(cls, run_dir: Path | str | Run, stage: str = "auto", device: str = "cpu",
                 precision: str = "auto") -> "Editor":
        """Load the generator of ``stage`` (``"auto"``: EBST if trained, else stage I) and the
        MaskVAE of a run directory. Damaged checkpoints are skipped for the newest intact one."""
        from .device import resolve_device
        device = resolve_device(device)
        run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
        if stage == "auto":
            found = run.editing_stage()
            if found is None:
                method = [s for s in generator_stages() if get_stage(s).role == "generator"]
                raise StageMissing(
                    f"{run.path} has no trained generator ({' or '.join(method)}). To train one, "
                    f"{get_stage(method[0]).how_to_train(run.path, run.cfg)}.")
        else:
            found = get_stage(stage).name
            if get_stage(found).generator is None:
                raise ConfigError(f"stage {found!r} ({get_stage(found).title}) renders no faces, so an Editor cannot "
                                  f"use it; generator stages are {', '.join(generator_stages())} (the MaskVAE of "
                                  "the run is loaded with whichever you choose)")
        dmn, cfg, ckpt = run.generator(found, device)
        editor = cls(dmn, run.maskvae(device) if run.has("vae") else None, device, precision=precision)
        editor.stage, editor.cfg, editor.source = found, cfg, f"{run.path} ({found}, step {ckpt.step})"
        from .interop.authors import faces_resample
        editor.resample = faces_resample(ckpt.record())
        return editor

    # --- style ---------------------------------------------------------------------------
    def _batch(self, image=None, label=None, label_name: str = "label"):
        if image is not None:
            image = as_image(image)
            image = image.unsqueeze(0) if image.dim() == 3 else image
        if label is not None:
            label = as_label(label, label_name)
            label = label.unsqueeze(0) if label.dim() == 2 else label
        if image is not None and label is not None and image.shape[-2:] != label.shape[-2:]:
            raise DataError(f"image is {image.shape[-1]}x{image.shape[-2]} but its {label_name} is "
                            f"{label.shape[-1]}x{label.shape[-2]}; they must have the same size")
        return (None if image is None else image.to(self.device), None if label is None else label.to(self.device))

    @torch.no_grad()
    def style(self, image: torch.Tensor, label: torch.Tensor, key=None) -> torch.Tensor:
        """AdaIN parameters of a face ``(image 3xHxW in [-1,1], label HxW)``; cached under ``key``."""
        if key is not None and key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key]
        image, label = self._batch(image, label)
        style = self._inference().style(image, one_hot(label))
        if key is not None:
            self._styles[key] = style
            while len(self._styles) > self.cache_size:
                self._styles.popitem(last=False)
        return style

    @torch.no_grad()
    def render(self, label: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The face of layout ``label`` (HxW or NxHxW) in ``style`` -> image(s) in [-1, 1]."""
        label = as_label(label)
        _check_style(style, label.shape[0] if label.dim() == 3 else 1)
        single = label.dim() == 2
        label = (label.unsqueeze(0) if single else label).to(self.device)
        out = self._inference().render(one_hot(label), style)
        return out[0] if single else out

    @torch.no_grad()
    def render_preview(self, label: torch.Tensor, style: torch.Tensor, factor: int = 2) -> torch.Tensor:
        """A fast stand-in for :meth:`render` while a stroke goes on: the label map at ``1/factor``
        of its size (:func:`preview_label`) rendered with the same style (the AdaIN parameters are
        per channel, one vector for any size), then upsampled bilinearly to the full size. About
        ``factor**2`` times cheaper; :func:`preview_psnr` measures what it costs in quality."""
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ConfigError(f"preview factor must be a positive integer, got {factor!r}")
        label = as_label(label)
        if factor == 1:
            return self.render(label, style)
        small = self.render(preview_label(label, factor), style)
        batch = small if small.dim() == 4 else small.unsqueeze(0)
        up = torch.nn.functional.interpolate(batch, size=tuple(label.shape[-2:]), mode="bilinear",
                                             align_corners=False).clamp_(-1, 1)
        return up if small.dim() == 4 else up[0]

    def preview_fits(self, size: int, factor: int = 2) -> bool:
        """Whether a ``size`` px frame can be previewed at ``1/factor`` (the DMN's side constraints)."""
        if factor == 1:
            return True
        if size % factor:
            return False
        try:
            self.dmn.check_size(size // factor, size // factor)
        except ValueError:
            return False
        return True

    def open_faces(self, folder, parser=None):
        """The faces of ``folder`` at this editor's size (:func:`maskgan.photo.open_faces`: image +
        mask pairs; images without a mask are cropped and parsed by ``parser`` when given), resized
        as :attr:`resample` says (BICUBIC for the authors' imported generator, as their demo does)."""
        from .photo import open_faces
        if self.cfg is None:
            raise ConfigError("this editor has no config, so its image size is unknown: use "
                              "maskgan.photo.open_faces(folder, size, parser) with the size of its faces")
        return open_faces(folder, int(self.cfg.data.size), parser=parser, resample=self.resample)

    def edit(self, image: torch.Tensor, label: torch.Tensor, edited_label: torch.Tensor, key=None,
             blend: str = DEFAULT_BLEND, margin: int | None = None, feather: int | None = None) -> torch.Tensor:
        """The kit's one-line edit: ``edited_label`` rendered in the style of ``(image, label)`` and
        composited into ``image``, so that only what the mask changed changes (:mod:`maskgan.composite`).

        The default blend, gradient-domain ``"poisson"`` with a margin of ``size / 64`` px, was chosen by
        measurement (``python -m maskgan compare-blends --pretrained``; docs/editing.md): with the
        shipped SynthFaces stage I it scores 34.40 dB against the true edits, 5.0 dB above returning the
        input unchanged (29.36 dB), where the paper's full re-render scores 22.81 dB.
        ``blend="rerender"`` is the paper's full re-rendering (:meth:`rerender`). Pixels farther than
        ``margin`` from every changed label are the input's own values, bit for bit."""
        return self.composite(image, label, edited_label, key, blend, margin, feather).image

    def rerender(self, image: torch.Tensor, label: torch.Tensor, edited_label: torch.Tensor, key=None) -> torch.Tensor:
        """The paper's edit (Sec. 3.3): the DMN renders ``edited_label`` whole in the style of
        ``(image, label)``; nothing of ``image`` is kept. For the reproduction and the ablation."""
        return self.render(edited_label, self.style(image, label, key))

    def composite(self, image: torch.Tensor, label: torch.Tensor, edited_label: torch.Tensor, key=None,
                  blend: str = DEFAULT_BLEND, margin: int | None = None, feather: int | None = None,
                  render: torch.Tensor | None = None) -> Composite:
        """:meth:`edit` with its parts: a :class:`~maskgan.composite.Composite` ``(image, alpha,
        layer, render)``, for pasting the edit into a photo at another size
        (:func:`maskgan.photo.paste_back`). ``render``: a rendering of ``edited_label`` made before
        (e.g. a preview), used instead of rendering again."""
        check_blend(blend)
        image_b, label_b = self._batch(image, label)
        _, edited_b = self._batch(None, edited_label, "edited_label")
        if edited_b.shape != label_b.shape:
            raise DataError(f"the edited label map is {tuple(edited_b.shape[-2:])} but the face's is "
                            f"{tuple(label_b.shape[-2:])}; an edit keeps the size of the mask")
        if render is None:
            render = self.render(edited_b, self.style(image_b, label_b, key))
        else:
            render = as_image(render, "render").to(self.device)
        single = image.dim() == 3 if isinstance(image, torch.Tensor) else getattr(image, "ndim", 4) == 3
        out = composite(image_b, render if render.dim() == 4 else render.unsqueeze(0), label_b, edited_b, blend,
                        margin, feather)
        return Composite(*(t[0] for t in out)) if single else out

    # --- mask manifold (MaskVAE) ---------------------------------------------------------
    def _need_vae(self):
        if self.vae is None:
            raise StageMissing(f"this editor has no MaskVAE. To train it, {get_stage('vae').how_to_train('RUN_DIR')}.")
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
        """Decoded mask at ``z_a + t (z_b - z_a)``: t=0 is a's reconstruction, t=1 b's; any finite t allowed."""
        _check_t(t)
        return self.decode(interpolate(self.encode(label_a), self.encode(label_b), t))[0]


def preview_psnr(editor: Editor, label, style: torch.Tensor, factor: int = 2) -> float:
    """What the painting preview costs: PSNR in dB (:func:`maskgan.metrics.psnr`, uncapped) of
    :meth:`Editor.render_preview` against the full :meth:`Editor.render` of the same mask and style.
    Higher is closer; identical frames give ``inf``."""
    from .metrics import psnr
    full = editor.render(label, style)
    fast = editor.render_preview(label, style, factor)
    return float(psnr(full.unsqueeze(0).cpu(), fast.unsqueeze(0).cpu(), cap=None)[0])
