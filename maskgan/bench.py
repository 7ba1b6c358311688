"""Speed benchmarks: ``python -m maskgan bench [--only NAME,...] [--precision P] [--out results.json]``.

Speed and memory targets live here, not in timed tests. Each benchmark returns rows of
``{"benchmark", "setting", "value", "unit"}``; the command prints them as a table (and writes
JSON with ``--out``) so numbers in the README and closing notes come from one command.

Precision (:mod:`maskgan.precision`): the benchmarks that render or train measure float32 and, where
``--precision`` (default ``auto``) resolves to bf16 on this device, bfloat16 next to it, in one
process and interleaved (fp32, bf16, fp32, bf16, ...), so both see the same machine load. Every row
of a CPU names its threads and whether the CPU has AMX and AVX512-BF16 (``docs/speed.md``).
"""
from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

from .io import atomic_write_json
from .text import format_table

__all__ = ["BENCHMARKS", "benchmark", "median_time", "interleaved_medians", "run_benchmarks", "sync"]

#: name -> function(device, precision) -> list of result rows
BENCHMARKS: dict[str, Callable[[str, str], list[dict]]] = {}


def benchmark(name: str):
    """Register a benchmark function under ``name``."""
    def register(fn):
        BENCHMARKS[name] = fn
        return fn
    return register


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], device: str = "cpu", warmup: int = 1, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` in seconds (after ``warmup`` calls; CUDA is synchronised)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], device: str = "cpu", warmup: int = 1,
                        repeat: int = 5) -> dict[str, float]:
    """Median wall time in seconds of each ``fns[name]()``, timed in turns (a, b, a, b, ...) after
    ``warmup`` calls of each, so that every function sees the same load on a shared machine."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _row(name: str, setting: str, value: float, unit: str) -> dict:
    return {"benchmark": name, "setting": setting, "value": round(float(value), 4), "unit": unit}


def _precisions(device: str, precision: str) -> list[str]:
    """fp32, and the precision ``precision`` resolves to on ``device`` when that is not fp32."""
    from .precision import resolve
    chosen = resolve(precision, device, what="benchmarking")
    return ["fp32"] + ([chosen] if chosen != "fp32" else [])


def _where(device: str, threads: int | None = None) -> str:
    """The end of a row's setting: the device, its threads and matrix units (AMX, AVX512-BF16)."""
    import torch

    from .precision import matrix_units
    if not str(device).startswith("cpu"):
        return f"{device} ({matrix_units(device)})"
    threads = threads or torch.get_num_threads()
    return f"cpu, {threads} thread{'s' if threads > 1 else ''}, {matrix_units('cpu')}"


def _psnr(a, b) -> float:
    """PSNR in dB of image batch ``a`` against ``b`` (both in [-1, 1]; uncapped, ``inf`` if equal)."""
    from .metrics import psnr
    return float(psnr(a.float().cpu(), b.float().cpu(), cap=None).mean())


def _paper_render_inputs(size: int, device: str):
    """A paper-width DMN (random weights, seed 0), a random one-hot mask of ``size``² and its style."""
    import torch

    from .config import Config
    from .labels import one_hot
    from .nn import build_dmn
    torch.manual_seed(0)
    dmn = build_dmn(Config.preset("paper")).to(device).eval().requires_grad_(False)
    mask = one_hot(torch.randint(0, 19, (1, size, size))).to(device)
    with torch.no_grad():
        style = dmn.style(torch.rand(1, 3, size, size, device=device) * 2 - 1, mask)
    return dmn, mask, style


@benchmark("synthfaces")
def bench_synthfaces(device: str, precision: str = "auto") -> list[dict]:
    """SynthFaces rendering throughput on one process (faces/s) at 64, 128 and 256 px."""
    from .data.synthfaces import bench_render
    return [_row("synthfaces render", f"{size}px, 1 process", bench_render(size=size, n=n), "faces/s")
            for size, n in ((64, 200), (128, 200), (256, 50))]


@benchmark("dmn")
def bench_dmn(device: str, precision: str = "auto") -> list[dict]:
    """DMN inference in float32: forward at the cpu preset (batch 1) and at paper widths (256², batch 1)
    (the bf16 frame is the ``render`` benchmark)."""
    import torch

    from .config import Config
    from .labels import one_hot
    from .nn import build_dmn
    rows = []
    for preset, size in (("cpu", None), ("paper", 256)):
        cfg = Config.preset(preset)
        size = size or cfg.data.size
        torch.manual_seed(0)
        dmn = build_dmn(cfg).to(device).eval()
        mask = one_hot(torch.randint(0, 19, (1, size, size))).to(device)
        image = torch.rand(1, 3, size, size, device=device) * 2 - 1
        with torch.no_grad():
            t = median_time(lambda: dmn(mask, image), device, repeat=3 if preset == "paper" else 10)
        rows.append(_row("DMN forward", f"{preset} widths, {size}px, batch 1, fp32, {_where(device)}", t * 1000, "ms"))
    return rows


@benchmark("frames")
def bench_frames(device: str, precision: str = "auto") -> list[dict]:
    """Editing frame time: edited mask -> displayed PNG bytes (Sec. 3.3, the widgets' hot path).

    A frame is what every brush stroke or slider step costs: :meth:`maskgan.editing.Editor.render`
    with the reference's style already cached, then :func:`maskgan.widgets.frame_png` (upsampled to
    the displayed size, PNG). Median over 50 frames, each on a differently edited mask, per precision
    (interleaved). Random weights (speed does not depend on training). On CPU it runs with torch's
    default thread count and with one thread, which is what the widgets' render thread uses (on a
    busy machine extra threads stall each other).
    Targets: <= 50 ms at the ``cpu`` preset (64 px) on 2 CPU cores; <= 15 ms at paper widths, 512 px,
    on a CUDA GPU (measured only with ``--device cuda``).
    """
    import torch

    from .config import Config
    from .data import build_dataset
    from .editing import Editor
    from .nn import build_dmn
    from .widgets import display_scale, frame_png, paint_stroke

    default_threads = torch.get_num_threads()
    settings = [("cpu", "cpu", default_threads)] + ([("cpu", "cpu", 1)] if default_threads > 1 else [])
    if str(device).startswith("cuda"):
        settings.append(("paper", device, default_threads))
    rows = []
    for preset, dev, threads in settings:
        cfg = Config.preset(preset).with_overrides({"data.dataset": "synthfaces"})
        size = cfg.data.size
        torch.manual_seed(0)
        dmn = build_dmn(cfg)
        editors = {p: Editor(dmn, device=dev, precision=p) for p in _precisions(dev, precision)}
        face = build_dataset(cfg.data, "val", length=1)[0]
        style = editors["fp32"].style(face["image"], face["label"], key=face["name"])
        scale = display_scale(size)
        label = face["label"].numpy()
        masks = [torch.from_numpy(paint_stroke(label, [(size * k / 50, size / 2), (size / 2, size * k / 50)],
                                               k % 19, size / 16)) for k in range(50)]
        frame = {"k": 0}

        def one_frame(editor):
            mask = masks[frame["k"] % len(masks)]
            frame["k"] += 1
            return frame_png(editor.render(mask, style), scale)

        torch.set_num_threads(threads)
        try:
            t_frame = interleaved_medians({p: (lambda e=e: one_frame(e)) for p, e in editors.items()}, dev,
                                          warmup=3, repeat=50)
            t_render = interleaved_medians({p: (lambda e=e: e.render(masks[0], style)) for p, e in editors.items()},
                                           dev, warmup=3, repeat=50)
        finally:
            torch.set_num_threads(default_threads)
        for p in editors:
            where = f"{preset} widths, {size}px shown at {size * scale}px, {p}, {_where(dev, threads)}"
            rows.append(_row("edit frame (render + PNG)", where, t_frame[p] * 1000, "ms"))
            rows.append(_row("  of which DMN render", where, t_render[p] * 1000, "ms"))
    return rows


@benchmark("render")
def bench_render(device: str, precision: str = "auto") -> list[dict]:
    """The editing frame at the authors' widths (``paper`` preset, 89.7 M-parameter DMN, random
    weights): the backbone's ``render(one_hot(label), style)`` at 256² and 512², batch 1, with the
    style cached, as :class:`maskgan.editing.Editor` renders it, in fp32 and bf16 (interleaved, median
    of 5 after one warm-up), and the bf16 frame's PSNR against the fp32 frame.
    Targets (issue 23, a 2-core CPU): bf16 at 512² at least 3.5x faster than fp32, PSNR >= 40 dB."""
    import torch

    from .precision import InferenceNet
    rows = []
    for size in (256, 512):
        dmn, mask, style = _paper_render_inputs(size, device)
        nets = {p: InferenceNet(dmn, p) for p in _precisions(device, precision)}
        with torch.no_grad():
            t = interleaved_medians({p: (lambda n=n: n.render(mask, style)) for p, n in nets.items()}, device,
                                    warmup=1, repeat=5)
            rows += _frame_rows(nets, t, "fp32", mask, style,
                                lambda p: f"paper widths, {size}², batch 1, style cached, {p}, {_where(device)}")
    return rows


def _frame_rows(engines: dict, times: dict, base: str, mask, style, where_of) -> list[dict]:
    """Rows of interleaved frame timings: each engine's time, and for all but ``base`` its speed-up over
    ``base`` and the PSNR of its frame against ``base``'s."""
    rows = []
    ref = engines[base].render(mask, style)
    for k, e in engines.items():
        where = where_of(k)
        rows.append(_row("edit frame: DMN render", where, times[k] * 1000, "ms"))
        if k != base:
            rows.append(_row(f"  speed-up over {base}", where, times[base] / times[k], "x"))
            rows.append(_row(f"  PSNR against {base}", where, _psnr(e.render(mask, style), ref), "dB"))
    return rows


@benchmark("runtimes")
def bench_runtimes(device: str, precision: str = "auto") -> list[dict]:
    """What a user might pick instead (:mod:`maskgan.runtime`): the same paper-width backbone frame as
    ``render`` (256² and 512², batch 1, style cached) in ONNX Runtime (fp32) and OpenVINO (fp32, and
    bf16 where the CPU has it), next to torch fp32 and bf16, interleaved (median of 5 after one
    warm-up); PSNR of each against torch fp32. Runtimes that are not installed are skipped with a
    note (``pip install -e ".[runtimes]"``). CPU only."""
    import tempfile

    import torch

    from .precision import InferenceNet
    from .runtime import available_runtimes, export_render, runtime_renderer
    if not str(device).startswith("cpu"):
        print("note: the runtimes benchmark runs on the CPU only")
        return []
    installed = available_runtimes()
    for name, version in installed.items():
        if version is None:
            print(f"note: {name} is not installed (pip install -e \".[runtimes]\"): no {name} rows")
    precisions = _precisions(device, precision)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (256, 512):
            dmn, mask, style = _paper_render_inputs(size, device)
            engines = {f"torch {p}": InferenceNet(dmn, p) for p in precisions}
            if installed["onnxruntime"] or installed["openvino"]:
                path = export_render(dmn, size, f"{tmp}/backbone_{size}.onnx")
                if installed["onnxruntime"]:
                    engines["onnxruntime fp32"] = runtime_renderer("onnxruntime", path)
                if installed["openvino"]:
                    for p in precisions:
                        engines[f"openvino {p}"] = runtime_renderer("openvino", path, precision=p)
            with torch.no_grad():
                t = interleaved_medians({k: (lambda e=e: e.render(mask, style)) for k, e in engines.items()},
                                        device, warmup=1, repeat=5)
                def where_of(k, size=size):
                    name = k.split()[0]
                    version = (torch.__version__ if name == "torch" else installed[name]).split("-")[0]
                    return f"paper widths, {size}², batch 1, style cached, {k} {version}, {_where(device)}"
                rows += _frame_rows(engines, t, "torch fp32", mask, style, where_of)
    return rows


@benchmark("preview")
def bench_preview(device: str, precision: str = "auto") -> list[dict]:
    """Painting at the authors' widths (``paper`` preset, 89.7 M-parameter DMN): the full 512² frame
    and the 256² preview the mask editor shows while the mouse drags
    (:meth:`maskgan.editing.Editor.render_preview`, upsampled to 512²), per precision (interleaved),
    then what the preview costs in quality: PSNR of the upsampled preview against the full frame
    (:func:`maskgan.editing.preview_psnr`), on a SynthFaces face.

    With random weights that PSNR says little about a trained model, so it is also measured on a
    trained run when one is found
    (``$MASKGAN_RUN_DIR``, else ``runs/demo``: e.g. the cpu preset's 64 px faces, preview at 32 px).
    Median of 3 frames after one warm-up (the paper-width frames take seconds on a CPU); on CPU
    with torch's default thread count and with one thread (the app's render thread).
    Target (issue 23): the bf16 preview under 0.15 s on a 2-core CPU.
    """
    import torch

    from .config import Config
    from .data import build_dataset
    from .editing import Editor, preview_psnr
    from .nn import build_dmn
    rows = []
    cfg = Config.preset("paper").with_overrides({"data.dataset": "synthfaces"})
    size = cfg.data.size
    torch.manual_seed(0)
    dmn = build_dmn(cfg)
    editors = {p: Editor(dmn, device=device, precision=p) for p in _precisions(device, precision)}
    face = build_dataset(cfg.data, "val", length=1)[0]
    style = editors["fp32"].style(face["image"], face["label"], key=face["name"])
    default_threads = torch.get_num_threads()
    threads_list = [default_threads] + ([1] if str(device) == "cpu" and default_threads > 1 else [])
    for threads in threads_list:
        torch.set_num_threads(threads)
        try:
            t_full = interleaved_medians({p: (lambda e=e: e.render(face["label"], style)) for p, e in editors.items()},
                                         device, warmup=1, repeat=3)
            t_prev = interleaved_medians({p: (lambda e=e: e.render_preview(face["label"], style, 2))
                                          for p, e in editors.items()}, device, warmup=1, repeat=3)
        finally:
            torch.set_num_threads(default_threads)
        for p in editors:
            where = f"paper widths, random weights, {p}, {_where(device, threads)}"
            rows.append(_row("full frame (render)", f"{size}px, {where}", t_full[p] * 1000, "ms"))
            rows.append(_row("paint preview (render + upsample)", f"{size // 2}px -> {size}px, {where}",
                             t_prev[p] * 1000, "ms"))
    for p, editor in editors.items():
        rows.append(_row("preview PSNR vs full frame", f"{size // 2}px -> {size}px, paper widths, random weights "
                         f"(weak: untrained), {p}", preview_psnr(editor, face["label"], style, 2), "dB"))
    rows.extend(_trained_preview_rows(device, list(editors)))
    return rows


def _trained_preview_rows(device: str, precisions: list[str] | None = None) -> list[dict]:
    """The preview's PSNR on a trained run's generator (the app's run directory), if there is one,
    per precision (default fp32)."""
    from .data import build_dataset
    from .editing import Editor, preview_psnr
    from .errors import MaskGANError
    from .widgets import resolve_run_dir
    path = resolve_run_dir(None)
    try:
        editor = Editor.from_run(path, device=device, precision="fp32")
    except MaskGANError:
        return []
    size = int(editor.cfg.data.size)
    if not editor.preview_fits(size, 2):
        return []
    faces = build_dataset(editor.cfg.data, "val", length=8)
    rows = []
    for p in precisions or ["fp32"]:
        editor.precision = p
        values = []
        for i in range(len(faces)):
            face = faces[i]
            values.append(preview_psnr(editor, face["label"], editor.style(face["image"], face["label"]), 2))
        where = f"{size // 2}px -> {size}px, trained {editor.stage} of {path.name} ({len(values)} val faces), {p}"
        rows.append(_row("preview PSNR vs full frame", where, sum(values) / len(values), "dB"))
    return rows


@benchmark("train")
def bench_train(device: str, precision: str = "auto") -> list[dict]:
    """Training step time and throughput of each stage at the ``cpu`` preset (median of 5 steps after
    one warm-up; data loading excluded), with ``train.amp`` none (fp32) and bf16 where ``precision``
    resolves to it, interleaved. EBST's step is one stage-I plus one stage-II update."""
    import tempfile

    from .config import Config
    from .data import build_dataset
    from .stages import method_stages
    from .train import prepared_trainer, train
    amps = {"fp32": "none", "bf16": "bf16"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.preset("cpu").with_overrides({"device": device, "cadence.sample_every": 10**6})
        train("vae", cfg, tmp, steps=1, progress=False)  # EBST needs a MaskVAE checkpoint
        dataset = build_dataset(cfg.data, "train", train=True)
        for stage in method_stages():
            prepared = {p: prepared_trainer(stage, cfg.with_overrides({"train.amp": amps[p]}), tmp, dataset=dataset)
                        for p in _precisions(device, precision)}
            t = interleaved_medians({p: (lambda tb=tb: tb[0].train_step(tb[1])) for p, tb in prepared.items()},
                                    device, warmup=1, repeat=5)
            for p, (trainer, _batch) in prepared.items():
                where = f"cpu preset, {cfg.data.size}px, batch {trainer.batch_size}, {p}, {_where(device)}"
                rows.append(_row(f"train step: {stage}", where, t[p] * 1000, "ms"))
                rows.append(_row(f"train throughput: {stage}", where, trainer.batch_size / t[p], "images/s"))
                if p != "fp32":
                    rows.append(_row(f"  speed-up over fp32: {stage}", where, t["fp32"] / t[p], "x"))
    return rows


_LOAD_WORKER = """
import statistics, sys, tempfile, time, torch
from maskgan.config import Config
from maskgan.data import build_dataset
from maskgan.train import prepared_trainer
with tempfile.TemporaryDirectory() as tmp:
    cfg = Config.preset("cpu").with_overrides({"cadence.sample_every": 10**6})
    trainer, batch = prepared_trainer("dmn", cfg, tmp, dataset=build_dataset(cfg.data, "train", train=True))
    for _ in range(3):
        trainer.train_step(batch)
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        trainer.train_step(batch)
        times.append(time.perf_counter() - t)
    print(statistics.median(times), torch.get_num_threads())
"""


def load_step_time(threads: int, wait_policy: str | None, competitors: int, steps: int = 15,
                   env_extra: dict | None = None) -> float:
    """Median stage-I step time (cpu preset) of a fresh process with ``threads`` OpenMP threads and
    ``OMP_WAIT_POLICY=wait_policy`` (None: the runtime's default), while ``competitors`` other processes
    each keep one core busy; ``env_extra``: more variables for that process (e.g. kernel pins)."""
    import os
    import subprocess
    import sys
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(competitors)]
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        env["OMP_NUM_THREADS"] = str(threads)
        if wait_policy:
            env["OMP_WAIT_POLICY"] = wait_policy
        env.update(env_extra or {})
        out = subprocess.run([sys.executable, "-c", _LOAD_WORKER, str(steps)], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        return float(out[0])
    finally:
        for p in busy:
            p.kill()
            p.wait()


@benchmark("load")
def bench_load(device: str, precision: str = "auto") -> list[dict]:
    """Training under load: the stage-I step (cpu preset, batch 8) with 1 or all cores' threads, the
    OpenMP runtime's default wait policy or PASSIVE, alone and next to one process that keeps a core
    busy (another user's job). Run it on an otherwise idle machine."""
    import os
    cores = os.cpu_count() or 1
    rows = []
    for competitors in (0, 1):
        for threads in sorted({1, cores}):
            for policy in (None, "PASSIVE"):
                t = load_step_time(threads, policy, competitors)
                where = (f"{threads} thread(s), OMP_WAIT_POLICY={policy or 'default'}, "
                         f"{'alone' if not competitors else f'{competitors} busy process'}")
                rows.append(_row("stage-I step under load", where, t * 1000, "ms"))
    return rows


@benchmark("photo")
def _bench_photo(device: str, precision: str = "auto") -> list[dict]:
    """The photo round trip, step by step (:mod:`maskgan.photo_bench`)."""
    from .photo_bench import bench_photo
    return bench_photo(device, precision)


@benchmark("pinning")
def bench_pinning(device: str, precision: str = "auto") -> list[dict]:
    """What the demo's kernel pins cost (maskgan.device.PINNED_KERNELS: AVX2 code paths in torch,
    oneDNN and MKL): the stage-I step (cpu preset, batch 8) of a fresh process with and without them,
    with 1 thread and with all cores, each measured twice in alternation (load drifts). Run it on an
    otherwise idle machine."""
    import os

    from .device import PINNED_KERNELS
    cores = os.cpu_count() or 1
    rows = []
    for threads in sorted({1, cores}):
        times: dict[str, list[float]] = {"default": [], "pinned": []}
        for _ in range(2):
            for name, extra in (("default", None), ("pinned", PINNED_KERNELS)):
                times[name].append(load_step_time(threads, None, 0, env_extra=extra))
        for name, values in times.items():
            where = f"{threads} thread(s), {name} kernels, runs {', '.join(f'{v * 1000:.0f}' for v in values)} ms"
            rows.append(_row("stage-I step, kernel pins", where, statistics.median(values) * 1000, "ms"))
    return rows


def run_benchmarks(only: str | None = None, out: str | None = None, device: str = "cpu",
                   precision: str = "auto") -> list[dict]:
    """Run the named benchmarks (all by default), print a table, optionally write JSON. ``precision``
    (``auto``, ``fp32``, ``bf16``): what the render and training benchmarks measure next to fp32."""
    import torch

    from .precision import PRECISIONS, matrix_units
    if precision not in PRECISIONS:
        from .errors import ConfigError
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    names = [n.strip() for n in only.split(",")] if only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        from .errors import ConfigError
        raise ConfigError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(BENCHMARKS)}")
    rows = []
    for name in names:
        print(f"running {name} ...", flush=True)
        rows.extend(BENCHMARKS[name](device, precision))
    machine = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
               "cpu_threads": torch.get_num_threads(), "machine": platform.machine(),
               "cpu": platform.processor() or platform.machine(), "matrix_units": matrix_units("cpu"),
               "precision": precision, "load_average": _load_average()}
    print()
    print(format_table([(r["benchmark"], r["setting"], r["value"], r["unit"]) for r in rows],
                       ("benchmark", "setting", "value", "unit")))
    print(f"\n{machine}")
    if out:
        atomic_write_json(out, {"machine": machine, "results": rows})
    return rows


def _load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (None where the OS has none)."""
    import os
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None
