"""Speed benchmarks: ``python -m maskgan bench [--only NAME,...] [--out results.json]``.

Speed and memory targets live here, not in timed tests. Each benchmark returns rows of
``{"benchmark", "setting", "value", "unit"}``; the command prints them as a table (and writes
JSON with ``--out``) so numbers in the README and closing notes come from one command.
"""
from __future__ import annotations

import platform
import statistics
import time
from typing import Callable

from .io import atomic_write_json
from .text import format_table

__all__ = ["BENCHMARKS", "benchmark", "median_time", "run_benchmarks", "sync"]

#: name -> function(device) -> list of result rows
BENCHMARKS: dict[str, Callable[[str], list[dict]]] = {}


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


def _row(name: str, setting: str, value: float, unit: str) -> dict:
    return {"benchmark": name, "setting": setting, "value": round(float(value), 4), "unit": unit}


@benchmark("synthfaces")
def bench_synthfaces(device: str) -> list[dict]:
    """SynthFaces rendering throughput on one process (faces/s) at 64, 128 and 256 px."""
    from .data.synthfaces import bench_render
    return [_row("synthfaces render", f"{size}px, 1 process", bench_render(size=size, n=n), "faces/s")
            for size, n in ((64, 200), (128, 200), (256, 50))]


@benchmark("dmn")
def bench_dmn(device: str) -> list[dict]:
    """DMN inference: forward at the cpu preset (batch 1) and at paper widths (256², batch 1)."""
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
        rows.append(_row("DMN forward", f"{preset} widths, {size}px, batch 1, {device}", t * 1000, "ms"))
    return rows


@benchmark("frames")
def bench_frames(device: str) -> list[dict]:
    """Editing frame time: edited mask -> displayed PNG bytes (Sec. 3.3, the widgets' hot path).

    A frame is what every brush stroke or slider step costs: :meth:`maskgan.editing.Editor.render`
    with the reference's style already cached, then :func:`maskgan.widgets.frame_png` (upsampled to
    the displayed size, PNG). Median over 50 frames, each on a differently edited mask. Random
    weights (speed does not depend on training). On CPU it runs with torch's default thread count
    and with one thread, which is what the widgets' render thread uses (on a busy machine extra
    threads stall each other).
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
        editor = Editor(build_dmn(cfg), device=dev)
        face = build_dataset(cfg.data, "val", length=1)[0]
        style = editor.style(face["image"], face["label"], key=face["name"])
        scale = display_scale(size)
        label = face["label"].numpy()
        masks = [torch.from_numpy(paint_stroke(label, [(size * k / 50, size / 2), (size / 2, size * k / 50)],
                                               k % 19, size / 16)) for k in range(50)]
        frame = {"k": 0}

        def one_frame():
            mask = masks[frame["k"] % len(masks)]
            frame["k"] += 1
            return frame_png(editor.render(mask, style), scale)

        torch.set_num_threads(threads)
        try:
            t_frame = median_time(one_frame, dev, warmup=3, repeat=50)
            t_render = median_time(lambda: editor.render(masks[0], style), dev, warmup=3, repeat=50)
        finally:
            torch.set_num_threads(default_threads)
        where = f"{preset} widths, {size}px shown at {size * scale}px, {dev}"
        if dev == "cpu":
            where += f", {threads} thread{'s' if threads > 1 else ''}"
        rows.append(_row("edit frame (render + PNG)", where, t_frame * 1000, "ms"))
        rows.append(_row("  of which DMN render", where, t_render * 1000, "ms"))
    return rows


@benchmark("preview")
def bench_preview(device: str) -> list[dict]:
    """Painting at the authors' widths (``paper`` preset, 89.7 M-parameter DMN): the full 512² frame
    and the 256² preview the mask editor shows while the mouse drags
    (:meth:`maskgan.editing.Editor.render_preview`, upsampled to 512²), then what the preview costs
    in quality: PSNR of the upsampled preview against the full frame
    (:func:`maskgan.editing.preview_psnr`), on a SynthFaces face.

    With random weights that PSNR says little about a trained model, so it is also measured on a
    trained run when one is found
    (``$MASKGAN_RUN_DIR``, else ``runs/demo``: e.g. the cpu preset's 64 px faces, preview at 32 px).
    Median of 2 frames after one warm-up (the paper-width frames take seconds on a CPU); on CPU
    with torch's default thread count and with one thread (the app's render thread).
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
    editor = Editor(build_dmn(cfg), device=device)
    face = build_dataset(cfg.data, "val", length=1)[0]
    style = editor.style(face["image"], face["label"], key=face["name"])
    default_threads = torch.get_num_threads()
    threads_list = [default_threads] + ([1] if str(device) == "cpu" and default_threads > 1 else [])
    for threads in threads_list:
        torch.set_num_threads(threads)
        try:
            t_full = median_time(lambda: editor.render(face["label"], style), device, warmup=1, repeat=2)
            t_prev = median_time(lambda: editor.render_preview(face["label"], style, 2), device, warmup=1, repeat=2)
        finally:
            torch.set_num_threads(default_threads)
        where = f"paper widths, random weights, {device}" + (
            f", {threads} thread{'s' if threads > 1 else ''}" if str(device) == "cpu" else "")
        rows.append(_row("full frame (render)", f"{size}px, {where}", t_full * 1000, "ms"))
        rows.append(_row("paint preview (render + upsample)", f"{size // 2}px -> {size}px, {where}",
                         t_prev * 1000, "ms"))
    rows.append(_row("preview PSNR vs full frame", f"{size // 2}px -> {size}px, paper widths, random weights "
                     "(weak: untrained)", preview_psnr(editor, face["label"], style, 2), "dB"))
    rows.extend(_trained_preview_rows(device))
    return rows


def _trained_preview_rows(device: str) -> list[dict]:
    """The preview's PSNR on a trained run's generator (the app's run directory), if there is one."""
    from .data import build_dataset
    from .editing import Editor, preview_psnr
    from .errors import MaskGANError
    from .widgets import resolve_run_dir
    path = resolve_run_dir(None)
    try:
        editor = Editor.from_run(path, device=device)
    except MaskGANError:
        return []
    size = int(editor.cfg.data.size)
    if not editor.preview_fits(size, 2):
        return []
    faces = build_dataset(editor.cfg.data, "val", length=8)
    values = []
    for i in range(len(faces)):
        face = faces[i]
        values.append(preview_psnr(editor, face["label"], editor.style(face["image"], face["label"]), 2))
    where = f"{size // 2}px -> {size}px, trained {editor.stage} of {path.name} ({len(values)} val faces)"
    return [_row("preview PSNR vs full frame", where, sum(values) / len(values), "dB")]


@benchmark("train")
def bench_train(device: str) -> list[dict]:
    """Training step time and throughput of each stage at the ``cpu`` preset (median of 5 steps after
    one warm-up; data loading excluded). EBST's step is one stage-I plus one stage-II update."""
    import tempfile


    from .config import Config
    from .data import build_dataset
    from .stages import method_stages
    from .train import prepared_trainer, train
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.preset("cpu").with_overrides({"device": device, "cadence.sample_every": 10**6})
        train("vae", cfg, tmp, steps=1, progress=False)  # EBST needs a MaskVAE checkpoint
        dataset = build_dataset(cfg.data, "train", train=True)
        for stage in method_stages():
            trainer, batch = prepared_trainer(stage, cfg, tmp, dataset=dataset)
            t = median_time(lambda: trainer.train_step(batch), device, warmup=1, repeat=5)
            where = f"cpu preset, {cfg.data.size}px, batch {trainer.batch_size}, {device}"
            rows.append(_row(f"train step: {stage}", where, t * 1000, "ms"))
            rows.append(_row(f"train throughput: {stage}", where, trainer.batch_size / t, "images/s"))
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
def bench_load(device: str) -> list[dict]:
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
def _bench_photo(device: str) -> list[dict]:
    """The photo round trip, step by step (:mod:`maskgan.photo_bench`)."""
    from .photo_bench import bench_photo
    return bench_photo(device)


@benchmark("pinning")
def bench_pinning(device: str) -> list[dict]:
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


def run_benchmarks(only: str | None = None, out: str | None = None, device: str = "cpu") -> list[dict]:
    """Run the named benchmarks (all by default), print a table, optionally write JSON."""
    import torch
    names = [n.strip() for n in only.split(",")] if only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        from .errors import ConfigError
        raise ConfigError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(BENCHMARKS)}")
    rows = []
    for name in names:
        print(f"running {name} ...", flush=True)
        rows.extend(BENCHMARKS[name](device))
    machine = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
               "cpu_threads": torch.get_num_threads(), "machine": platform.machine()}
    print()
    print(format_table([(r["benchmark"], r["setting"], r["value"], r["unit"]) for r in rows],
                       ("benchmark", "setting", "value", "unit")))
    print(f"\n{machine}")
    if out:
        atomic_write_json(out, {"machine": machine, "results": rows})
    return rows
