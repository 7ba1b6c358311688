"""Numeric precision: float32, or bfloat16 on the CPU's matrix units, for editing and for training.

A CPU with AVX512-BF16 (AMD Zen 4, Intel Cooper Lake and later) or AMX (Intel Sapphire Rapids and
later) multiplies bfloat16 matrices natively, and oneDNN (torch's CPU convolutions) uses them. The
kit's networks keep bfloat16 and channels-last from layer to layer (:mod:`maskgan.nn.layers`), so:

* **editing** (:class:`maskgan.editing.Editor`, the widgets, ``evaluate``) renders with a
  bfloat16, channels-last copy of the generator (:class:`InferenceNet`); the style vector is computed
  once per face in float32 by the float32 network (it is cached, so its cost does not recur), and the
  image comes back as float32;
* **training** (``train.amp=bf16``) runs forward passes under autocast on the CPU as on a GPU, with
  the loss math (autocast's float32 list: MSE, L1, BCE) and the optimizer in float32.

Precisions: ``"fp32"``, ``"bf16"`` and ``"auto"``. ``"auto"`` is bfloat16 for editing on a CPU that
has bfloat16 support and float32 everywhere else (GPUs included: not measured by the kit); see
``docs/speed.md`` for the numbers behind it. Where bfloat16 is asked for but missing, the kit uses
float32 and says so in one line (:func:`resolve`).
"""
from __future__ import annotations

import copy
import torch

from .errors import ConfigError

__all__ = ["PRECISIONS", "ENV", "cpu_features", "bf16_supported", "matrix_units", "requested", "resolve", "amp_dtype",
           "InferenceNet", "inference_net"]

#: The precision choices of every command, notebook and the app.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")

#: Environment variable the app reads for its precision (``make app PRECISION=bf16``).
ENV = "MASKGAN_PRECISION"


def cpu_features() -> dict[str, bool]:
    """The CPU's bfloat16 matrix features as torch sees them: ``amx_bf16`` and ``avx512_bf16``."""
    caps = {}
    getter = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.7
    if getter is not None:
        try:
            caps = getter()
        except RuntimeError:
            caps = {}
    return {"amx_bf16": bool(caps.get("amx_bf16", False)), "avx512_bf16": bool(caps.get("avx512_bf16", False))}


def bf16_supported(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively: on the CPU, oneDNN's own check (AVX512-BF16 or
    AMX, :func:`torch.ops.mkldnn._is_mkldnn_bf16_supported`); on CUDA, the GPU's."""
    device = torch.device(device)
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return False


def matrix_units(device: str | torch.device = "cpu") -> str:
    """One phrase for benchmark rows and status lines: ``"AMX yes, AVX512-BF16 yes"`` on a CPU, the
    GPU's name on CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    f = cpu_features()
    return f"AMX {'yes' if f['amx_bf16'] else 'no'}, AVX512-BF16 {'yes' if f['avx512_bf16'] else 'no'}"


def requested(precision: str | None = None) -> str:
    """The precision asked for: ``precision`` if given, else ``$MASKGAN_PRECISION``, else ``"auto"``
    (checked: an unknown name is a :class:`ConfigError` naming where it came from)."""
    import os
    chosen, where = (precision, "precision") if precision else (os.environ.get(ENV) or "auto", f"${ENV}")
    if chosen not in PRECISIONS:
        raise ConfigError(f"{where} is {chosen!r}; expected one of {', '.join(PRECISIONS)}")
    return chosen


def resolve(precision: str | None, device: str | torch.device = "cpu", *, what: str = "editing",
            say=print) -> str:
    """The precision to use, ``"fp32"`` or ``"bf16"``, for ``precision`` in :data:`PRECISIONS` on
    ``device`` (``None`` or ``""`` count as ``"auto"``).

    ``"auto"``: bfloat16 on a CPU with bfloat16 support, float32 otherwise. ``"bf16"`` where the
    device lacks it: float32, and one line through ``say`` that says so. An unknown name is a
    :class:`ConfigError`."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if precision == "fp32":
        return "fp32"
    if precision == "auto":
        return "bf16" if device.type == "cpu" and bf16_supported(device) else "fp32"
    if bf16_supported(device):
        return "bf16"
    where = f"this CPU ({matrix_units(device)})" if device.type == "cpu" else f"device {device}"
    say(f"note: bf16 {what} was asked for, but {where} has no native bfloat16 support: using fp32")
    return "fp32"


def amp_dtype(amp: str, device: str | torch.device, say=print) -> torch.dtype | None:
    """The autocast dtype of a training run's ``train.amp`` (``"none"``, ``"bf16"``, ``"fp16"``) on
    ``device``: on CUDA as asked; ``"bf16"`` on a CPU with bfloat16 support; else None (float32),
    with one line through ``say`` when a mode was asked for that this device does not run."""
    if amp == "none":
        return None
    device = torch.device(device)
    if device.type == "cuda":
        return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    if amp == "bf16" and device.type == "cpu":
        return torch.bfloat16 if resolve("bf16", device, what="training", say=say) == "bf16" else None
    say(f"note: train.amp={amp} runs on CUDA{' and on CPUs with bfloat16 units' if amp == 'bf16' else ''}; "
        f"training in fp32 on {device}")
    return None


class InferenceNet:
    """A generator's ``style`` and ``render`` at a resolved precision, for inference (no gradients).

    ``"fp32"`` calls the network itself. ``"bf16"`` renders with a copy of it in bfloat16 and
    channels-last memory format (the float32 network stays as it was; the copy costs half its memory),
    made again whenever the float32 weights change (a checkpoint loaded into the network, a training
    step); the style stays float32 (:meth:`style` uses the float32 network: one call per face, so
    the copy's rounding is not added to every frame). Masks and images go in as float32, and images
    come out as float32, so callers do not change.
    """

    def __init__(self, net: torch.nn.Module, precision: str = "fp32"):
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"InferenceNet needs a resolved precision (fp32 or bf16), got {precision!r}; "
                              "use maskgan.precision.resolve first")
        self.net, self.precision = net, precision
        self._low, self._low_of = None, None

    def _weights_version(self) -> tuple[int, ...]:
        # every in-place write to a tensor (load_state_dict, an optimizer step) bumps its version counter
        return tuple(t._version for t in (*self.net.parameters(), *self.net.buffers()))

    def _low_net(self) -> torch.nn.Module:
        version = self._weights_version()
        if self._low is None or self._low_of != version:
            low = copy.deepcopy(self.net).to(dtype=torch.bfloat16, memory_format=torch.channels_last).eval()
            self._low, self._low_of = low.requires_grad_(False), version
        return self._low

    @property
    def dtype(self) -> torch.dtype:
        """The dtype frames are computed in."""
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(dtype=torch.bfloat16, memory_format=torch.channels_last)

    def style(self, image: torch.Tensor, image_mask: torch.Tensor) -> torch.Tensor:
        """The style vector, always in float32 (see the class docstring)."""
        return self.net.style(image, image_mask)

    def render(self, mask: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The image of the one-hot ``mask`` in ``style``, as float32."""
        if self.precision == "fp32":
            return self.net.render(mask, style)
        return self._low_net().render(self._cast(mask), style).float()

    def __call__(self, mask: torch.Tensor, image: torch.Tensor, image_mask: torch.Tensor | None = None):
        return self.render(mask, self.style(image, mask if image_mask is None else image_mask))


def inference_net(net: torch.nn.Module, precision: str | None, device: str | torch.device | None = None,
                  say=print) -> InferenceNet:
    """:class:`InferenceNet` for ``net`` at ``precision`` (resolved on ``device``, by default the
    device of the net's weights)."""
    if device is None:
        device = next(net.parameters()).device
    return InferenceNet(net, resolve(precision, device, say=say))
