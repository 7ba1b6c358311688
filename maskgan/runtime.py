"""Inference runtimes next to torch: the DMN's backbone in ONNX Runtime or OpenVINO (both optional).

What a user without a GPU might pick instead of the kit's own bfloat16 path (:mod:`maskgan.precision`):
export the frame's work -- the backbone, ``render(one_hot(label), style)`` with the style cached --
to ONNX once, and run it in an inference runtime. :func:`export_render` writes that ONNX file (batch
1, one square size, the torch exporter); :func:`runtime_renderer` opens it in

* ``"onnxruntime"``: ONNX Runtime's CPU provider, float32 (its CPU provider has no bfloat16
  convolutions);
* ``"openvino"``: OpenVINO's CPU plugin, float32 or bfloat16 (``INFERENCE_PRECISION_HINT``; its bf16
  kernels use AVX512-BF16 or AMX like oneDNN's).

``python -m maskgan bench --only runtimes`` times them next to torch fp32 and bf16 and measures
their output against torch fp32 (``docs/speed.md`` has the numbers). Neither runtime is a dependency
of the kit: install them with ``pip install -e ".[runtimes]"``; without them the benchmark says which
is missing and measures torch alone.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError

__all__ = ["RUNTIMES", "available_runtimes", "export_render", "runtime_renderer", "RuntimeRenderer"]

#: Runtime name -> the Python module that provides it.
RUNTIMES: dict[str, str] = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def available_runtimes() -> dict[str, str | None]:
    """Runtime name -> its installed version, or None when it is not installed."""
    import importlib
    out: dict[str, str | None] = {}
    for name, module in RUNTIMES.items():
        try:
            out[name] = str(importlib.import_module(module).__version__)
        except ImportError:
            out[name] = None
    return out


class _Render(torch.nn.Module):
    """The backbone as a two-input module ``(one-hot mask, style) -> image`` for the exporter."""

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, mask: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.backbone(mask, style)


def export_render(dmn, size: int, path: str | Path) -> Path:
    """Write the float32 backbone of ``dmn`` (a :class:`~maskgan.nn.DenseMappingNetwork`) as one ONNX
    file for batch 1 at ``size`` x ``size``: inputs ``mask`` ``(1, 19, size, size)`` and ``style``
    ``(1, n_style_params)``, output ``image`` ``(1, 3, size, size)``. Written to a temporary file
    and renamed into place, so ``path`` is whole or absent."""
    path = Path(path)
    dmn.check_size(size, size)
    if not hasattr(dmn, "backbone"):
        raise ConfigError(f"export_render exports a DMN's backbone; {type(dmn).__name__} has none")
    backbone = dmn.backbone
    param = next(backbone.parameters())
    mask = torch.zeros(1, backbone.num_classes, size, size, device=param.device)
    mask[:, 0] = 1
    style = torch.zeros(1, backbone.n_style_params, device=param.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        with torch.no_grad(), _quiet_exporter():
            torch.onnx.export(_Render(backbone).eval(), (mask, style), str(tmp / path.name), dynamo=True,
                              input_names=["mask", "style"], output_names=["image"], external_data=False)
        os.replace(tmp / path.name, path)
    except OSError as e:
        raise ConfigError(f"could not write the ONNX file {path}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's progress lines, warnings and log records are not the user's business here."""
    import logging
    import warnings
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class RuntimeRenderer:
    """``render(mask, style) -> image`` (torch tensors in and out, float32, on the CPU) through an
    inference runtime's session on an ONNX file of :func:`export_render`."""

    def __init__(self, name: str, run, precision: str):
        self.name, self._run, self.precision = name, run, precision

    def render(self, mask: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        feeds = {"mask": np.ascontiguousarray(mask.detach().float().cpu().numpy()),
                 "style": np.ascontiguousarray(style.detach().float().cpu().numpy())}
        return torch.from_numpy(np.array(self._run(feeds), dtype=np.float32, copy=True))  # runtimes reuse their buffers


def runtime_renderer(name: str, onnx_path: str | Path, *, threads: int | None = None,
                     precision: str = "fp32") -> RuntimeRenderer:
    """A :class:`RuntimeRenderer` of runtime ``name`` (:data:`RUNTIMES`) on ``onnx_path`` with
    ``threads`` CPU threads (default: torch's count) at a resolved ``precision`` (``"fp32"``;
    ``"bf16"`` for OpenVINO only). A runtime that is not installed is a :class:`ConfigError` that
    says how to install it."""
    if name not in RUNTIMES:
        raise ConfigError(f"unknown runtime {name!r}; expected one of {', '.join(RUNTIMES)}")
    if available_runtimes()[name] is None:
        raise ConfigError(f"the runtime {name} is not installed: pip install -e \".[runtimes]\" (or pip install {name})")
    threads = int(threads or torch.get_num_threads())
    onnx_path = str(onnx_path)
    if name == "onnxruntime":
        if precision != "fp32":
            raise ConfigError("ONNX Runtime's CPU provider runs this model in fp32 only; ask for precision fp32")
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
        return RuntimeRenderer(name, lambda feeds: session.run(["image"], feeds)[0], precision)
    import openvino as ov
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"OpenVINO precision must be fp32 or bf16, got {precision!r}")
    compiled = ov.Core().compile_model(onnx_path, "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return RuntimeRenderer(name, lambda feeds: request.infer(feeds)[compiled.output(0)], precision)
