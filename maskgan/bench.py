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
from .summary import format_table

__all__ = ["BENCHMARKS", "benchmark", "median_time", "run_benchmarks"]

#: name -> function(device) -> list of result rows
BENCHMARKS: dict[str, Callable[[str], list[dict]]] = {}


def benchmark(name: str):
    """Register a benchmark function under ``name``."""
    def register(fn):
        BENCHMARKS[name] = fn
        return fn
    return register


def _sync(device: str) -> None:
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], device: str = "cpu", warmup: int = 1, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` in seconds (after ``warmup`` calls; CUDA is synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
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


def run_benchmarks(only: str | None = None, out: str | None = None, device: str = "cpu") -> list[dict]:
    """Run the named benchmarks (all by default), print a table, optionally write JSON."""
    import torch
    names = [n.strip() for n in only.split(",")] if only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(BENCHMARKS)}")
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
