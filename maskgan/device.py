"""Which device the kit runs on: one rule for every command, trainer, editor and app."""
from __future__ import annotations

import os

import torch

from .errors import ConfigError

__all__ = ["resolve_device", "free_cores", "available_cores", "choose_threads", "THREADS_ENV", "PINNED_KERNELS",
           "pinned_kernel_env", "kernel_settings"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or empty) picks cuda (the process's ``LOCAL_RANK`` under torchrun), then mps, then
    cpu; anything else is passed to ``torch.device`` after checking that it exists here."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {device!r} is not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for, but CUDA is not available on this machine; "
                          "use --device cpu (or auto)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ConfigError(f"device {device!r} was asked for, but MPS is not available on this machine; use cpu or auto")
    return dev


# --- CPU threads: graceful next to other work -------------------------------------------------
#
# Measured on this project's 2-core machine (`python -m maskgan bench --only load`, twice): a
# stage-I step at the cpu preset takes 180-200 ms with 2 threads and 300 ms with 1 when the machine
# is idle, but 626-671 ms with 2 threads and 303-312 ms with 1 when another process keeps one core
# busy (OpenMP's threads wait for each other on the shared core). OMP_WAIT_POLICY=PASSIVE helps
# under load (373 ms) but costs as much when idle (306 ms). So the kit takes the cores that are
# free when it starts, unless the user fixed the thread count.

#: Set this (or OMP_NUM_THREADS) to fix the thread count: runs are bitwise repeatable for a fixed
#: seed and thread count, so a reproduction that must match to the bit sets it.
THREADS_ENV = "MASKGAN_THREADS"


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[3] + (values[4] if len(values) > 4 else 0), sum(values)  # idle + iowait, total


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cores(sample_s: float = 0.3) -> int:
    """Cores not kept busy by other processes, from the machine's idle time over ``sample_s``
    seconds (Linux ``/proc/stat``; elsewhere every available core). At least 1."""
    import time
    n = available_cores()
    try:
        idle0, total0 = _cpu_times()
        time.sleep(sample_s)
        idle1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return n
    machine = os.cpu_count() or n
    busy = machine * (1.0 - (idle1 - idle0) / max(total1 - total0, 1))
    return max(1, min(n, int(machine - busy + 0.5)))


def choose_threads(report=print) -> int:
    """Set torch's CPU thread count for this process and return it: ``$MASKGAN_THREADS`` if set,
    torch's own choice if ``OMP_NUM_THREADS`` is set, else the free cores (:func:`free_cores`).
    ``report`` gets one line when fewer threads than cores are taken."""
    fixed = os.environ.get(THREADS_ENV)
    if fixed:
        try:
            n = int(fixed)
        except ValueError:
            raise ConfigError(f"{THREADS_ENV}={fixed!r} is not a thread count; expected a positive integer") from None
        if n < 1:
            raise ConfigError(f"{THREADS_ENV}={fixed!r} is not a thread count; expected a positive integer")
        torch.set_num_threads(n)
        return n
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    cores, free = available_cores(), free_cores()
    torch.set_num_threads(free)
    if free < cores and report is not None:
        report(f"note: {cores - free} of {cores} cores are busy with other work, so this process uses {free} "
               f"thread(s) (set {THREADS_ENV} or OMP_NUM_THREADS to choose)")
    return free


# --- CPU kernels: which instruction set the float sums use -------------------------------------
#
# A CPU run is bitwise repeatable for a fixed seed, thread count and instruction set: torch's own
# reductions (ATen) sum in vector lanes of the width its dispatch picked (AVX2 or AVX-512), oneDNN's
# convolutions and MKL's BLAS/LAPACK pick kernels by instruction set, and each order of float sums
# rounds differently. Over 1,500 GAN steps such last-bit differences grow into different weights
# (the demo's metrics moved by 0.1-0.5 dB between machines and thread counts). The demo's kernels
# are therefore started with these variables, so that every x86-64 CPU with AVX2 (nearly all since
# 2013; AVX-512 and AMX machines included) runs the same code paths. What remains machine-specific:
# the thread count (the demo records it) and, in some oneDNN kernels, blockings chosen from the
# CPU's cache sizes. docs/reproducibility.md has the measurements and what they cost.

#: The instruction-set pins of the demo's kernels (read by torch, oneDNN and MKL when they load).
PINNED_KERNELS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",      # torch's vectorised kernels: AVX2 lanes, not AVX-512
    "ONEDNN_MAX_CPU_ISA": "AVX2",       # oneDNN (convolutions): no AVX-512 or AMX kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL (matmul, eigh): its AVX2 code ...
    "MKL_CBWR": "AVX2",                 # ... with conditional numerical reproducibility
}


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def pinned_kernel_env(environ: dict | None = None) -> dict[str, str]:
    """The :data:`PINNED_KERNELS` a child process should get: on an x86-64 Linux CPU with AVX2, each
    variable the user has not set already (a value of theirs wins); elsewhere nothing (other CPUs
    have no such choice, or no AVX2 to pin to)."""
    import platform
    environ = os.environ if environ is None else environ
    if platform.machine().lower() not in ("x86_64", "amd64") or not _has_avx2():
        return {}
    return {k: v for k, v in PINNED_KERNELS.items() if k not in environ}


def kernel_settings(environ: dict | None = None) -> dict[str, str | None]:
    """What decides this process's float sums besides the seed: torch's CPU capability, the thread
    count and the instruction-set variables of :data:`PINNED_KERNELS` (None where unset)."""
    environ = os.environ if environ is None else environ
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            **{k: environ.get(k) for k in PINNED_KERNELS}}
