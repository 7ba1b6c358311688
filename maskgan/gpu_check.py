"""One time-boxed GPU check of the kit: ``python -m maskgan.gpu_check --out DIR [--dry-run] [--budget-s S]``.

Written for a borrowed GPU machine (one command, a few minutes, nothing installable, only what is
written under ``--out`` comes back: at most 8 files of 16 MiB each). Sections, in the order they run:

1. ``data_loading``: SynthFaces rendering throughput at 512² in one process and through a DataLoader
   with several workers (later compared with the GPU step times: can the loader keep the GPU fed?);
2. ``correctness``: 50 training steps of each stage (``vae``, ``dmn``, ``ebst``) at the ``paper``
   preset on SynthFaces 512² through :func:`maskgan.train.train` (no NaN, losses moving, from each
   stage's ``log.jsonl``); resume equality (N steps against N/2 + resume to N, safetensors compared
   bitwise, at the small ``cpu`` preset); bf16 against fp32 on the first stage-I losses;
3. ``editing``: the editing frame latency (:meth:`maskgan.editing.Editor.render` with a cached style)
   at paper widths, 512², fp32 and bf16;
4. ``throughput``: images/s and peak memory of the stage-I step and the EBST iteration over
   resolution x batch x precision x channels_last x torch.compile, by priority, skipping what the
   budget does not allow (every row is recorded, skipped ones as ``skipped``; OOM as ``OOM``);
5. ``showcase``: with the time left, MaskVAE, stage I and EBST trained at 128² at the fastest setting
   of the table, for time-based step counts; DMN and MaskVAE weights as fp16 safetensors, the last
   sample grids and the config, so the run can be evaluated on a CPU later.

``results.json`` is rewritten after every measurement, so a run killed by a time limit still returns
what it measured. ``--dry-run`` takes the same code path on the CPU with tiny sizes (smoke widths,
32², batch 1-2, 2-4 steps, no torch.compile) in well under a minute.

"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .bench import sync as _sync
from .checkpoint import find_checkpoint
from .config import flatten
from .run import read_jsonl
from .stages import get_stage, method_stages
from .train import collate, prepared_trainer

#: The paper's method in training order (MaskVAE, stage I, EBST), from the stage registry.
METHOD_STAGES: tuple[str, ...] = tuple(method_stages())
#: Its generator stages (stage I, EBST): the steps the throughput table times.
TRAINED_GENERATORS: tuple[str, ...] = tuple(s for s in METHOD_STAGES if get_stage(s).generator is not None)


def _prerequisites(stage: str) -> tuple[str, ...]:
    """The stages that must be trained before ``stage`` (what it needs and what it starts from)."""
    st = get_stage(stage)
    return tuple(st.needs) + ((st.starts_from,) if st.starts_from else ())

__all__ = ["OUT_FILES", "SCHEMA", "SECTIONS", "Plan", "dry_plan", "gpu_plan", "main", "run"]

SCHEMA = "maskgan.gpu_check/1"
SECTIONS: tuple[str, ...] = ("data_loading", "correctness", "editing", "throughput", "showcase")
#: Everything written under --out (the GPU tool returns at most 8 files, 16 MiB each, 64 MiB in all).
OUT_FILES: dict[str, str] = {
    "results": "results.json",
    "fig_checks": "fig_checks.png",
    "fig_throughput": "fig_throughput.png",
    "showcase_samples": "showcase_samples.png",
    "showcase_config": "showcase_config.json",
    "showcase_dmn_stage1": "showcase_dmn_stage1_fp16.safetensors",
    "showcase_dmn_ebst": "showcase_dmn_ebst_fp16.safetensors",
    "showcase_maskvae": "showcase_maskvae_fp16.safetensors",
}
MAX_FILE_BYTES = 16 * 2**20
PRECISIONS = {"fp32": "none", "bf16": "bf16"}  # table label -> train.amp


class Stopped(BaseException):
    """Raised by the SIGTERM/SIGINT handler: results are written, then the process exits."""


# --- the plan: every size, count and time share in one place ------------------------------------

@dataclass
class Plan:
    dry_run: bool
    device: str
    budget_s: float
    # section deadlines as fractions of the budget (absolute: time one section leaves goes to the next)
    deadlines: dict = field(default_factory=lambda: {"data_loading": 0.06, "correctness": 0.32, "editing": 0.36,
                                                     "throughput": 0.74, "showcase": 0.965})
    # 1. correctness
    preset: str = "paper"
    size: int = 512
    steps: int = 50
    num_workers: int = 8
    vgg_weights: str = "auto"  # ImageNet file if in the hub cache, else random (no download attempt offline)
    resume_preset: str = "cpu"
    resume_size: int = 64
    resume_steps: int = 20
    resume_repeat: bool = True  # an uninterrupted repeat too: the device's own nondeterminism floor
    resume_overrides: dict = field(default_factory=dict)
    precision_steps: int = 10
    precision_tol_rel: float = 0.05  # judged: stage-I generator total at each of the first steps
    precision_tol_rel_terms: float = 0.10  # every term with |fp32| >= precision_term_floor
    precision_term_floor: float = 0.05
    # 2. throughput table (paper widths)
    table_preset: str = "paper"
    table_sizes: tuple = (256, 512)
    table_batches: tuple = (1, 4, 8, 16)
    compile_rows: tuple = (("dmn", 256, 8, "bf16"), ("dmn", 512, 1, "bf16"), ("ebst", 256, 8, "bf16"),
                           ("dmn", 512, 1, "fp32"), ("dmn", 256, 16, "bf16"), ("ebst", 512, 1, "bf16"))
    allow_compile: bool = True
    compile_estimate_s: float = 75.0  # until one compile row is measured
    max_tier: int = 5  # priority tiers measured at most (see GPUCheck.table_plan)
    table_overrides: dict = field(default_factory=dict)
    warmup: int = 2
    min_repeat: int = 3
    max_repeat: int = 10
    target_s: float = 1.0  # timed seconds per row (at least min_repeat steps)
    # editing latency
    edit_preset: str = "paper"
    edit_size: int = 512
    edit_frames: int = 30
    # 3. showcase (cpu-preset losses, widths chosen so each fp16 file stays under 16 MiB)
    showcase_preset: str = "cpu"
    showcase_overrides: dict = field(default_factory=lambda: {
        "data.size": 128, "model.dmn.ngf": 32, "model.dmn.enc_ch": 16, "model.dmn.enc_n_down": 5,
        "model.discriminator.ndf": 32, "model.blender.ngf": 16, "model.blender.n_down": 3,
        "train.batch_size": 16, "data.num_workers": 0})
    showcase_shares: dict = field(default_factory=lambda: {"vae": 0.2, "dmn": 0.4, "ebst": 0.4})
    showcase_min_steps: int = 50
    showcase_max_steps: int = 20000
    showcase_min_s: float = 30.0  # below this much time left, the showcase is skipped
    showcase_reserve_s: float = 8.0  # kept for the export and the figures
    # 4. data loading
    loader_size: int = 512
    loader_workers: tuple = (4, 8, 14)
    loader_batch: int = 8
    loader_seconds: float = 2.5
    # per-fit overhead estimate (build, samples, checkpoint) used by time-based step counts
    fit_overhead_s: float = 4.0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def gpu_plan(budget_s: float = 450.0, device: str = "cuda") -> Plan:
    cpus = _cpus()
    workers = max(1, min(12, cpus - 2))
    loader = tuple(sorted({w for w in (4, 8, max(1, cpus - 2)) if w <= max(1, cpus - 1)}))
    return Plan(dry_run=False, device=device, budget_s=float(budget_s), num_workers=workers, loader_workers=loader)


def dry_plan(budget_s: float = 120.0) -> Plan:
    """The same code path on the CPU with tiny sizes (well under a minute)."""
    no_vgg = {"model.loss.vgg_weights": "none", "model.loss.lambda_percept": 0.0}  # as the cpu preset: cheap builds
    return Plan(
        dry_run=True, device="cpu", budget_s=float(budget_s),
        preset="smoke", size=32, steps=3, num_workers=0, vgg_weights="random",
        resume_preset="smoke", resume_size=32, resume_steps=2, resume_repeat=False, resume_overrides=no_vgg,
        precision_steps=3,
        table_preset="smoke", table_sizes=(32,), table_batches=(1, 2), table_overrides=no_vgg, max_tier=2,
        compile_rows=(("dmn", 32, 2, "bf16"),), allow_compile=False, compile_estimate_s=60.0,
        warmup=1, min_repeat=1, max_repeat=2, target_s=0.02,
        edit_preset="smoke", edit_size=32, edit_frames=3,
        showcase_preset="smoke", showcase_overrides={"data.size": 32, "train.batch_size": 2, "data.num_workers": 0,
                                                     **no_vgg},
        showcase_min_steps=2, showcase_max_steps=3, showcase_min_s=1.0, showcase_reserve_s=1.0,
        loader_size=32, loader_workers=(1,), loader_batch=2, loader_seconds=0.2, fit_overhead_s=1.0)


# --- config -------------------------------------------------------------------------------------

def cfg_get(cfg, dotted: str):
    """A config value by its dotted key, e.g. ``cfg_get(cfg, "train.amp")``."""
    return flatten(cfg.to_dict())[dotted]


def _preset(name: str, extra: dict | None = None):
    from .config import Config
    return Config.preset(name).with_overrides({"data.dataset": "synthfaces", **(extra or {})})


# --- results, clock, small helpers ---------------------------------------------------------------

def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and hasattr(x, "dtype"):  # tensors / numpy scalars
        return _jsonable(x.item())
    return x


class Results:
    """``results.json``, rewritten atomically after every measurement."""

    def __init__(self, out: Path, plan: Plan):
        self.out = out
        self.path = out / OUT_FILES["results"]
        self.data = {"schema": SCHEMA, "status": "running", "dry_run": plan.dry_run, "budget_s": plan.budget_s,
                     "elapsed_s": 0.0, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {},
                     "plan": _jsonable(asdict(plan)),
                     "sections": {name: {"status": "pending"} for name in SECTIONS},
                     "files": {}, "errors": []}
        self.t0 = time.perf_counter()

    def section(self, name: str) -> dict:
        return self.data["sections"][name]

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
        present = {k: v for k, v in OUT_FILES.items() if (self.out / v).exists() or k == "results"}
        self.data["files"] = {k: {"name": v, "bytes": (self.out / v).stat().st_size if (self.out / v).exists() else None}
                              for k, v in present.items()}
        text = json.dumps(_jsonable(self.data), indent=1, sort_keys=False) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)


class Clock:
    def __init__(self, budget_s: float):
        self.t0 = time.perf_counter()
        self.budget = budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def until(self, fraction: float) -> float:
        """Seconds left before ``fraction`` of the budget is used (negative when past it)."""
        return fraction * self.budget - self.elapsed()

    def deadline(self, fraction: float) -> float:
        """The ``time.perf_counter()`` value at which ``fraction`` of the budget is used."""
        return self.t0 + fraction * self.budget


def _r(x, nd=4):
    return None if x is None else round(float(x), nd)


def _free(device: str) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        import torch
        torch.cuda.empty_cache()


def _is_oom(e: BaseException) -> bool:
    import torch
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or "out of memory" in str(e).lower()


def _peak_reset(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str):
    if str(device).startswith("cuda"):
        import torch
        return round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return None


def _time_steps(fn, device: str, warmup: int, min_repeat: int, max_repeat: int, target_s: float,
                deadline: float | None = None) -> dict:
    """First-call time (compile, autotune, Adam state), then the median of at least ``min_repeat``
    synchronised calls after ``warmup`` calls in all, up to ``max_repeat`` or ``target_s`` seconds."""
    t = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - t
    for _ in range(max(0, warmup - 1)):
        fn()
    _sync(device)
    times: list[float] = []
    while len(times) < max_repeat:
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
        if len(times) >= min_repeat and (sum(times) >= target_s or (deadline and time.perf_counter() > deadline)):
            break
    return {"first_s": first, "median_s": statistics.median(times), "repeats": len(times)}


def _first(batch: dict, n: int) -> dict:
    """The first ``n`` samples of a batch (every tensor or list of batch length is cut)."""
    size = len(batch["name"]) if "name" in batch else batch["image"].shape[0]
    out = {}
    for k, v in batch.items():
        if hasattr(v, "shape") and v.dim() > 0 and v.shape[0] == size:
            out[k] = v[:n]
        elif isinstance(v, (list, tuple)) and len(v) == size:
            out[k] = list(v[:n])
        else:
            out[k] = v
    return out


def _cached_faces(cfg, n: int, workers: int):
    """The first ``n`` training faces of ``cfg.data`` rendered once (in ``workers`` processes) and
    kept in memory: a dataset whose items cost nothing, so timings and the showcase measure the GPU."""
    from torch.utils.data import DataLoader, Dataset, Subset

    from .data import build_dataset

    class CachedFaces(Dataset):
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    ds = build_dataset(cfg.data, "train", train=True)
    n = min(n, len(ds))
    per_batch = max(1, min(32, n // max(1, workers)))  # small batches when few faces: every worker busy
    loader = DataLoader(Subset(ds, range(n)), batch_size=per_batch, num_workers=workers, collate_fn=collate)
    items = []
    for b in loader:
        for i in range(len(b["name"])):
            items.append({"image": b["image"][i].clone(), "label": b["label"][i].clone(), "name": b["name"][i]})
    del loader
    return CachedFaces(items)


_META_KEYS = ("step", "lr", "epoch", "time", "seconds", "images_per_second", "it")


def _loss_keys(rows: list[dict]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        for k in r:
            leaf = k.rsplit("/", 1)[-1].lower()
            if k not in keys and leaf not in _META_KEYS and not leaf.startswith("lr"):
                keys.append(k)
    return keys


def _norm(key: str) -> str:
    return key.replace("/", "_").replace(".", "_").lower()


def primary_key(keys, which: str = "g") -> str | None:
    """The generator's (``which="g"``) or discriminator's (``"d"``) total among loss names of any
    spelling (``g_total``, ``g/total``, ``s1_g_total``, ``s1/g/total``); for the MaskVAE ``total``."""
    keys = list(keys)
    norm = {k: _norm(k) for k in keys}
    for want in (f"{which}_total", f"s1_{which}_total", "total"):
        for k, n in norm.items():
            if n == want:
                return k
    for k, n in norm.items():
        if n.endswith("total") and (f"{which}_" in n):
            return k
    totals = [k for k, n in norm.items() if "total" in n]
    return totals[0] if totals else (keys[0] if keys else None)


def summarize_log(rows: list[dict]) -> dict:
    """No NaN, first and last values, and whether the losses moved."""
    keys = _loss_keys(rows)
    if not rows or not keys:
        return {"n_logged": len(rows), "log_keys": keys, "no_nan": None, "moving": None}
    first = {k: next((r[k] for r in rows if k in r), None) for k in keys}
    last = {k: next((r[k] for r in reversed(rows) if k in r), None) for k in keys}
    no_nan = all(math.isfinite(v) for r in rows for k, v in r.items() if k in keys)
    changed = [k for k in keys if first[k] is not None and last[k] is not None
               and abs(last[k] - first[k]) > 1e-3 * max(abs(first[k]), 1e-6)]
    pk = primary_key(keys)
    moving = pk in changed if pk else bool(changed)
    return {"n_logged": len(rows), "log_keys": keys, "no_nan": no_nan, "moving": moving,
            "keys_changed": f"{len(changed)}/{len(keys)}", "primary_key": pk,
            "primary_first": first.get(pk), "primary_last": last.get(pk),
            "first": first, "last": last,
            "first_step": rows[0].get("step"), "last_step": rows[-1].get("step"),
            "primary_curve": [[r.get("step"), r.get(pk)] for r in rows if pk in r][:400]}


def last_checkpoint(stage_dir: Path) -> Path | None:
    """The newest checkpoint folder of a stage (not verified: the comparison reads every file anyway)."""
    ckpt = find_checkpoint(stage_dir, verify=False, report=None)
    return ckpt.path if ckpt is not None else None


def compare_checkpoints(a: Path, b: Path) -> dict:
    """Bitwise comparison of every ``*.safetensors`` of two checkpoint folders."""
    import torch
    from safetensors.torch import load_file
    files_a = sorted(p.name for p in a.glob("*.safetensors"))
    files_b = sorted(p.name for p in b.glob("*.safetensors"))
    out = {"files": files_a, "same_files": files_a == files_b, "tensors": 0, "different_tensors": 0,
           "max_abs_diff": 0.0, "a": str(a.name), "b": str(b.name)}
    if files_a != files_b:
        out["identical"] = False
        return out
    for name in files_a:
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        if sorted(ta) != sorted(tb):
            out["identical"] = False
            out["key_mismatch"] = name
            return out
        for k in ta:
            out["tensors"] += 1
            if not torch.equal(ta[k], tb[k]):
                out["different_tensors"] += 1
                if ta[k].is_floating_point():
                    d = (ta[k].double() - tb[k].double()).abs().max().item()
                    out["max_abs_diff"] = max(out["max_abs_diff"], d)
                else:
                    out["max_abs_diff"] = max(out["max_abs_diff"], float("inf"))
    out["identical"] = out["different_tensors"] == 0
    return out


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_stage(src_run: Path, dst_run: Path, stage: str, link: bool = False) -> None:
    """Copy (or hard-link) a stage's checkpoints, not its logs or lock files, into another run directory."""
    src = src_run / stage / "checkpoints"
    dst = dst_run / stage / "checkpoints"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"), copy_function=_link_or_copy if link else shutil.copy2)
    cfg = src_run / stage / "config.json"
    if cfg.exists():
        shutil.copy2(cfg, dst_run / stage / "config.json")


# --- the checker ---------------------------------------------------------------------------------

class GPUCheck:
    def __init__(self, plan: Plan, out: Path, work: Path, only: tuple[str, ...] = SECTIONS):
        self.plan, self.out, self.work, self.only = plan, out, work, only
        self.results = Results(out, plan)
        self.clock = Clock(plan.budget_s)
        self.dev = plan.device
        self.current: str | None = None
        self.vae_sources: dict[tuple, Path] = {}  # MaskVAE identity -> a run directory that trained it
        self.vae_dirs: dict[tuple, Path] = {}  # MaskVAE identity -> a run directory holding only it

    # --- plumbing ---------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[gpu_check {self.clock.elapsed():6.1f}s] {msg}", flush=True)

    def save(self) -> None:
        self.results.save()

    def problem(self, section: str, what: str) -> None:
        """A failed measurement inside a section that otherwise ran: listed in ``errors``."""
        self.results.data["errors"].append({"section": section, "error": what[:1500]})

    def left(self, section: str) -> float:
        return self.clock.until(self.plan.deadlines[section])

    def run_section(self, name: str, fn) -> None:
        sec = self.results.section(name)
        if name not in self.only:
            sec.update(status="not_run", reason="not in --only")
            self.save()
            return
        if self.left(name) <= 0:
            sec.update(status="skipped", reason="budget: the section's deadline had passed when it came up")
            self.save()
            return
        self.current = name
        t0 = time.perf_counter()
        sec.update(status="running", started_s=round(self.clock.elapsed(), 2),
                   deadline_s=round(self.plan.deadlines[name] * self.plan.budget_s, 1))
        self.save()
        self.log(f"section {name} (until {sec['deadline_s']} s of {self.plan.budget_s:.0f} s)")
        try:
            fn(sec)
            sec["status"] = sec.pop("final_status", None) or ("partial" if sec.get("budget_exhausted") else "ok")
        except Stopped:
            sec["status"] = "killed"
            self.killed_in = name
            raise
        except Exception as e:  # noqa: BLE001 - one section's failure must not stop the others
            sec["status"] = "error"
            sec["error"] = f"{type(e).__name__}: {e}"[:2000]
            sec["traceback"] = traceback.format_exc()[-6000:]
            self.results.data["errors"].append({"section": name, "error": sec["error"]})
            self.log(f"section {name} failed: {sec['error'][:300]}")
        finally:
            sec["seconds"] = round(time.perf_counter() - t0, 2)
            self.current = None
            self.save()
            _free(self.dev)

    def machine(self) -> dict:
        import numpy
        import torch
        info = {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
                "numpy": numpy.__version__, "cuda_runtime": torch.version.cuda, "cpu_count": os.cpu_count(),
                "cpus_usable": _cpus(), "torch_threads": torch.get_num_threads(), "device": self.dev,
                "env": {k: os.environ.get(k) for k in ("CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "PYTHONPATH")}}
        for mod in ("safetensors", "matplotlib", "PIL", "tqdm"):
            try:
                info[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001
                info[mod] = None
        try:
            info["cudnn"] = torch.backends.cudnn.version()
            info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
            info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
            info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
        except Exception as e:  # noqa: BLE001 - informative only
            info["backend_flags"] = f"unavailable: {e}"
        if self.dev.startswith("cuda"):
            p = torch.cuda.get_device_properties(0)
            info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                        capability=f"{p.major}.{p.minor}", gpu_count=torch.cuda.device_count())
            try:
                q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm",
                                    "--format=csv,noheader"], check=False, capture_output=True, text=True, timeout=15)
                info["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
            except Exception as e:  # noqa: BLE001
                info["nvidia_smi"] = f"unavailable: {e}"
        return info

    # --- configs ----------------------------------------------------------------------------
    def paper_cfg(self, size: int, preset: str | None = None, **extra):
        p = self.plan
        values = {"data.size": size, "data.num_workers": 0, "cadence.log_every": 1,
                  "cadence.sample_every": 10**6, "cadence.checkpoint_every": 10**6}
        if (preset or p.preset) == "paper":
            values["model.loss.vgg_weights"] = p.vgg_weights
        values.update(extra)
        return _preset(preset or p.preset).with_overrides(values)

    def _vae_key(self, cfg) -> tuple:
        return tuple(cfg_get(cfg, k) for k in ("data.size", "train.amp", "model.maskvae.base_ch",
                                               "model.maskvae.latent_dim", "train.vae_batch_size", "seed"))

    def ensure_vae(self, cfg) -> Path:
        """A run directory holding only a MaskVAE checkpoint of ``cfg`` (EBST needs one): linked from
        the correctness run when that one has the same identity, else trained for one step."""
        key = self._vae_key(cfg)
        if key in self.vae_dirs:
            return self.vae_dirs[key]
        run_dir = self.work / ("vae_only_" + "_".join(str(k) for k in key))
        src = self.vae_sources.get(key)
        if src is not None and last_checkpoint(src / "vae") is not None:
            _copy_stage(src, run_dir, "vae", link=True)
        else:
            from .train import train
            train("vae", cfg.with_overrides({"train.compile": False}), run_dir, steps=1, device=self.dev, progress=False)
        self.vae_dirs[key] = run_dir
        return run_dir

    # --- 4. data loading --------------------------------------------------------------------
    def data_loading(self, sec: dict) -> None:
        import torch
        from torch.utils.data import DataLoader

        from .data import build_dataset
        p = self.plan
        cfg = self.paper_cfg(p.loader_size)
        ds = build_dataset(cfg.data, "train", train=True)
        n = 4 if p.dry_run else 8
        ds[0]
        t = time.perf_counter()
        for i in range(1, n + 1):
            ds[i]
        per_face = (time.perf_counter() - t) / n
        sec.update(size=p.loader_size, batch=p.loader_batch, cpus=_cpus(),
                   single_process={"ms_per_face": _r(per_face * 1000, 2), "faces_per_s": _r(1 / per_face, 1)},
                   loaders=[])
        self.save()
        deadline = self.clock.deadline(p.deadlines["data_loading"])
        start = 64
        for w in p.loader_workers:
            if time.perf_counter() + p.loader_seconds + 1.0 > deadline:
                sec["loaders"].append({"workers": w, "status": "skipped", "reason": "budget"})
                sec["budget_exhausted"] = True
                continue
            # batches of faces not rendered before (the loader must really render them)
            count = 400 * p.loader_batch
            idx = [(start + i) % len(ds) for i in range(count)]
            start += count
            loader = DataLoader(torch.utils.data.Subset(ds, idx), batch_size=p.loader_batch, num_workers=w,
                                collate_fn=collate, pin_memory=self.dev.startswith("cuda"))
            t0 = time.perf_counter()
            it = iter(loader)
            next(it)
            t_first = time.perf_counter() - t0
            for _ in range(2 * w):  # drain the prefetched batches: steady state
                next(it, None)
            faces, t1 = 0, time.perf_counter()
            while time.perf_counter() - t1 < p.loader_seconds:
                b = next(it, None)
                if b is None:
                    break
                faces += len(b["name"])
            dt = time.perf_counter() - t1
            del it, loader
            sec["loaders"].append({"workers": w, "status": "ok", "faces_per_s": _r(faces / dt, 1),
                                   "first_batch_s": _r(t_first, 3), "faces": faces, "seconds": _r(dt, 2)})
            self.log(f"loader {w} workers: {faces / dt:.1f} faces/s at {p.loader_size}px")
            self.save()
        ok = [r for r in sec["loaders"] if r.get("status") == "ok"]
        sec["best_faces_per_s"] = max((r["faces_per_s"] for r in ok), default=None)
        sec["note"] = ("vs_gpu (filled after the throughput table): images/s the fastest GPU row of each stage and "
                       "batch consumes against the loader's best faces/s (fed: loader >= 1.2 x GPU). EBST also "
                       "renders one reference face per image for M^ref: in the data loader when the kit's batches "
                       "carry ref_label, else in the trainer's main process, serially with the GPU work")

    def data_vs_gpu(self) -> None:
        """Compare the loader's throughput with the GPU rows measured at the loader's size."""
        data, table = self.results.section("data_loading"), self.results.section("throughput")
        best = data.get("best_faces_per_s")
        per_face = (data.get("single_process") or {}).get("ms_per_face")
        rows = [r for r in table.get("rows", []) if r.get("status") == "ok" and r["size"] == self.plan.loader_size]
        out = []
        for stage in TRAINED_GENERATORS:
            for b in self.plan.table_batches:
                cands = [r for r in rows if r["stage"] == stage and r["batch"] == b]
                if not cands:
                    continue
                fastest = max(cands, key=lambda r: r["images_per_s"])
                e = {"stage": stage, "batch": b, "gpu_images_per_s": fastest["images_per_s"],
                     "setting": fastest["setting"], "loader_faces_per_s": best,
                     "fed": None if best is None else bool(best >= 1.2 * fastest["images_per_s"])}
                if stage == "ebst" and per_face is not None:
                    ref_ms = b * per_face  # rendering b reference faces for M^ref, on one core
                    e["ref_mask_render_ms_per_iter"] = _r(ref_ms, 1)
                    if table.get("ebst_refs_in_batch"):  # the loader renders them: twice the faces per image
                        e["refs_rendered_by"] = "data loader"
                        e["loader_faces_needed_per_s"] = _r(2 * fastest["images_per_s"], 1)
                        e["fed"] = None if best is None else bool(best >= 1.2 * 2 * fastest["images_per_s"])
                    else:  # the trainer renders them in the main process, serially with the GPU work
                        e["refs_rendered_by"] = "main process"
                        e["ref_mask_share_of_iter"] = _r(ref_ms / (ref_ms + fastest["step_s"] * 1000), 3)
                out.append(e)
        corr = self.results.section("correctness").get("stages", {}).get("vae", {})
        if corr.get("seconds_per_step") and best:
            vb = corr.get("batch")
            out.append({"stage": "vae", "batch": vb, "gpu_images_per_s": _r(vb / corr["seconds_per_step"], 1),
                        "setting": "correctness run (fit, data loading included)", "loader_faces_per_s": best,
                        "fed": bool(best >= 1.2 * vb / corr["seconds_per_step"])})
        data["vs_gpu"] = out
        self.save()

    # --- 1. correctness ---------------------------------------------------------------------
    def correctness(self, sec: dict) -> None:
        from .train import train
        p = self.plan
        deadline = self.clock.deadline(p.deadlines["correctness"])
        cfg = self.paper_cfg(p.size, **{"data.num_workers": p.num_workers})
        # the kit refuses steps past a stage's LR schedule: make every schedule at least that long
        cfg = cfg.with_overrides({k: max(p.steps, cfg_get(cfg, k)) for k in ("train.vae_steps", "train.dmn_steps",
                                                                          "train.ebst_steps")})
        run_dir = self.work / f"correctness_{p.preset}_{p.size}"
        sec.update(preset=p.preset, size=p.size, steps=p.steps, dataset="synthfaces", num_workers=p.num_workers,
                   vgg_weights=cfg_get(cfg, "model.loss.vgg_weights"), stages={})
        self.save()
        for stage in METHOD_STAGES:
            st = sec["stages"][stage] = {"status": "running",
                                         "batch": cfg_get(cfg, "train.vae_batch_size" if stage == "vae" else "train.batch_size")}
            if time.perf_counter() > deadline - min(10.0, 0.02 * p.budget_s):
                st.update(status="skipped", reason="budget")
                sec["budget_exhausted"] = True
                continue
            t0 = time.perf_counter()
            try:
                summary = train(stage, cfg, run_dir, steps=p.steps, device=self.dev, progress=False)
                st.update(status="ok", seconds_per_step=summary.get("seconds_per_step"),
                          images_per_second=summary.get("images_per_second"))
            except Exception as e:  # noqa: BLE001 - the NaN guard raises TrainingError: recorded
                st.update(status="error", error=f"{type(e).__name__}: {e}"[:1500])
                self.problem("correctness", f"{stage}: {st['error']}")
                if "nan" in str(e).lower() or "inf" in str(e).lower():
                    st["nan_guard"] = True
            st["seconds"] = _r(time.perf_counter() - t0, 2)
            st.update(summarize_log(read_jsonl(run_dir / stage / "log.jsonl")))
            if st["status"] == "ok" and stage == "vae":
                self.vae_sources[self._vae_key(cfg)] = run_dir
            self.log(f"correctness {stage}: {st['status']}, no_nan={st.get('no_nan')}, moving={st.get('moving')}, "
                     f"{st.get('primary_key')} {st.get('primary_first')} -> {st.get('primary_last')}")
            self.save()
        self.precision(sec, deadline)
        self.resume(sec, deadline)
        stages = list(sec["stages"].values())
        ran = all(s.get("no_nan") is not None for s in stages)  # else None: not measured (skipped, failed)
        sec["passed"] = {
            "no_nan": all(s.get("no_nan") is True for s in stages) if ran else None,
            "moving": all(s.get("moving") is True for s in stages) if ran else None,
            "resume_identical": (sec.get("resume") or {}).get("all_identical"),
            "resume_ok": (sec.get("resume") or {}).get("all_ok"),
            "bf16_within_tolerance": (sec.get("bf16_vs_fp32") or {}).get("within_tolerance"),
        }

    def precision(self, sec: dict, deadline: float) -> None:
        """bf16 against fp32: the first stage-I loss terms from the same weights and batches."""
        import torch

        p = self.plan
        res = sec["bf16_vs_fp32"] = {"preset": p.preset, "size": p.size, "steps": p.precision_steps,
                                     "tolerance_rel": p.precision_tol_rel,
                                     "tolerance_rel_terms": p.precision_tol_rel_terms,
                                     "term_floor": p.precision_term_floor,
                                     "how": "prepared_trainer('dmn') twice from the same seed (same weights), "
                                            "train_step repeated on its batch; rel diff = |bf16-fp32| / max(|fp32|, 1e-3)"}
        if time.perf_counter() > deadline - 8:
            res.update(status="skipped", reason="budget")
            sec["budget_exhausted"] = True
            return
        if not self.dev.startswith("cuda"):
            res["note"] = "autocast is CUDA-only in the trainer: on the CPU both runs are fp32 (the path is exercised)"
        cfg0 = self.paper_cfg(p.size)
        cached = _cached_faces(cfg0, 8, workers=min(p.num_workers, 8))
        curves = {}
        for label, amp in PRECISIONS.items():
            cfg = cfg0.with_overrides({"train.amp": amp})
            torch.manual_seed(cfg.seed)
            trainer, batch = prepared_trainer("dmn", cfg, self.work / f"precision_{label}", device=self.dev, dataset=cached)
            vals: dict[str, list] = {}
            for i in range(p.precision_steps):
                terms = trainer.train_step(batch)
                for k, v in terms.items():
                    vals.setdefault(k, []).append(float(v.detach().float()))
            curves[label] = vals
            del trainer
            _free(self.dev)
        res["fp32"], res["bf16"] = curves["fp32"], curves["bf16"]
        keys = [k for k in curves["fp32"] if k in curves["bf16"]]
        rel = {k: [abs(b - a) / max(abs(a), 1e-3) for a, b in zip(curves["fp32"][k], curves["bf16"][k])] for k in keys}
        res["max_rel_diff"] = {k: _r(max(v), 5) for k, v in rel.items()}
        res["step1_max_rel_diff"] = _r(max((v[0] for v in rel.values()), default=0.0), 5)
        gk, dk = primary_key(keys, "g"), primary_key(keys, "d")
        res["judged_key"], res["d_key"] = gk, dk
        res["within_tolerance"] = bool(gk is not None and max(rel[gk]) <= p.precision_tol_rel)
        judged = [k for k in keys if max(abs(a) for a in curves["fp32"][k]) >= p.precision_term_floor]
        res["all_terms_within"] = all(max(rel[k]) <= p.precision_tol_rel_terms for k in judged)
        res["terms_judged"] = judged
        res["finite"] = all(math.isfinite(x) for c in curves.values() for v in c.values() for x in v)
        res["status"] = "ok"
        self.log(f"bf16 vs fp32: {gk} max rel diff {res['max_rel_diff'].get(gk)} "
                 f"(tolerance {p.precision_tol_rel}), within={res['within_tolerance']}")
        self.save()

    def resume(self, sec: dict, deadline: float) -> None:
        """N steps uninterrupted against N/2 then resume to N: last checkpoints compared bitwise."""
        import torch

        p = self.plan
        n, half = p.resume_steps, p.resume_steps // 2
        cfg = self.paper_cfg(p.resume_size, preset=p.resume_preset,
                             **{"train.vae_steps": n, "train.dmn_steps": n, "train.ebst_steps": n, **p.resume_overrides})
        res = sec["resume"] = {"preset": p.resume_preset, "size": p.resume_size, "steps": n, "resumed_at": half,
                               "deterministic_algorithms": True, "stages": {},
                               "how": "A: N steps; B: N/2 steps, then train(resume=True) to N; every safetensors of "
                                      "the last checkpoints compared bitwise. EBST's B starts from copies of A's "
                                      "MaskVAE and DMN. On CUDA (resume_repeat) an uninterrupted repeat R of A "
                                      "measures the device's own run-to-run differences: within_device_noise = "
                                      "max |A-B| <= 2 max |A-R|. cudnn.deterministic and "
                                      "use_deterministic_algorithms(warn_only) are on during this check."}
        if time.perf_counter() > deadline - 6:
            res.update(status="skipped", reason="budget")
            sec["budget_exhausted"] = True
            return
        cuda = self.dev.startswith("cuda")
        prev = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True, warn_only=True)
        root = self.work / "resume"
        try:
            a = root / "A"
            for stage in METHOD_STAGES:
                st = res["stages"][stage] = {}
                if time.perf_counter() > deadline - 3:
                    st.update(status="skipped", reason="budget")
                    sec["budget_exhausted"] = True
                    continue
                t0 = time.perf_counter()
                try:
                    self.resume_stage(stage, cfg, a, root, n, half, cuda, st)
                except Exception as e:  # noqa: BLE001 - recorded; the next stage still runs
                    st.update(status="error", error=f"{type(e).__name__}: {e}"[:1500])
                    self.problem("correctness", f"resume {stage}: {st['error']}")
                st["seconds"] = _r(time.perf_counter() - t0, 2)
                self.save()
        finally:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev
            torch.use_deterministic_algorithms(False)
            shutil.rmtree(root, ignore_errors=True)
        done = [s for s in res["stages"].values() if s.get("status") == "ok"]
        res["all_identical"] = len(done) == 3 and all(s["identical"] for s in done)
        res["all_ok"] = len(done) == 3 and all(s["verdict"] in ("identical", "within_device_noise") for s in done)
        res["status"] = "ok"

    def resume_stage(self, stage: str, cfg, a: Path, root: Path, n: int, half: int, cuda: bool, st: dict) -> None:
        """A: ``n`` steps (EBST on A's own MaskVAE and DMN); B: ``half`` steps then resume to ``n``, in a
        fresh run directory that holds copies of A's MaskVAE and DMN when the stage needs them."""
        from .train import train
        deps = _prerequisites(stage)

        def fresh(name: str) -> Path:
            d = root / f"{name}_{stage}"
            for dep in deps:  # same inputs as A: A's MaskVAE and stage-I DMN
                _copy_stage(a, d, dep)
            return d

        train(stage, cfg, a, steps=n, device=self.dev, progress=False)
        b = fresh("B")
        train(stage, cfg, b, steps=half, device=self.dev, progress=False)
        train(stage, cfg, b, steps=n, device=self.dev, progress=False, resume=True)
        ca = last_checkpoint(a / stage)
        st.update(compare_checkpoints(ca, last_checkpoint(b / stage)))
        if self.plan.resume_repeat and (cuda or not st["identical"]):
            r = fresh("R")
            train(stage, cfg, r, steps=n, device=self.dev, progress=False)
            rep = compare_checkpoints(ca, last_checkpoint(r / stage))
            st["repeat_identical"] = rep["identical"]
            st["repeat_max_abs_diff"] = rep["max_abs_diff"]
        if st["identical"]:
            st["verdict"] = "identical"
        elif st.get("repeat_max_abs_diff") and st["max_abs_diff"] <= 2 * st["repeat_max_abs_diff"]:
            st["verdict"] = "within_device_noise"
        else:
            st["verdict"] = "differs"
        st["status"] = "ok"
        self.log(f"resume {stage}: {st['verdict']} (max abs diff {st['max_abs_diff']:.3g}"
                 + (f", uninterrupted repeat {st['repeat_max_abs_diff']:.3g})" if "repeat_max_abs_diff" in st else ")"))

    # --- editing latency --------------------------------------------------------------------
    def editing(self, sec: dict) -> None:
        import numpy as np
        import torch

        from .data import build_dataset
        from .editing import Editor
        from .nn import build_dmn
        p = self.plan
        cfg = self.paper_cfg(p.edit_size, preset=p.edit_preset)
        torch.manual_seed(0)
        editor = Editor(build_dmn(cfg), device=self.dev)
        face = build_dataset(cfg.data, "val", length=1)[0]
        label = face["label"].numpy()
        size = label.shape[0]
        yy, xx = np.mgrid[:size, :size]
        masks = []
        for k in range(max(p.edit_frames, 4)):  # a brush dab of a different class at a different place per frame
            m = label.copy()
            cy, cx = size * (0.3 + 0.4 * ((k * 7) % 11) / 10), size * (0.3 + 0.4 * ((k * 3) % 11) / 10)
            m[(yy - cy) ** 2 + (xx - cx) ** 2 <= (size / 16) ** 2] = 1 + k % 18
            masks.append(torch.from_numpy(m).long())
        sec.update(preset=p.edit_preset, size=size, frames=p.edit_frames,
                   how="Editor(build_dmn(cfg)) with random weights (speed does not depend on training); style "
                       "computed once; a frame = render(edited mask (CPU), cached style); frame_ms adds the "
                       "uint8 conversion and the copy back to the host", rows=[])
        st = _time_steps(lambda: editor.style(face["image"], face["label"]), self.dev, 2, 3, 5, 0.3)
        sec["style_ms"] = _r(st["median_s"] * 1000, 3)
        style = editor.style(face["image"], face["label"], key="ref")
        outputs = {}
        for label_p in PRECISIONS:
            ctx = ((lambda: torch.autocast(torch.device(self.dev).type, dtype=torch.bfloat16)) if label_p == "bf16"
                   else contextlib.nullcontext)
            k = {"i": 0}

            def render(k=k, ctx=ctx):
                k["i"] += 1
                with ctx():
                    return editor.render(masks[k["i"] % len(masks)], style)

            def frame(render=render):
                out = render()
                return (out.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)).cpu()

            t_render = _time_steps(render, self.dev, 3, p.edit_frames, p.edit_frames, 0.0)
            t_frame = _time_steps(frame, self.dev, 2, p.edit_frames, p.edit_frames, 0.0)
            with ctx():
                outputs[label_p] = editor.render(masks[0], style).float().cpu()
            sec["rows"].append({"precision": label_p, "render_ms": _r(t_render["median_s"] * 1000, 3),
                                "frame_ms": _r(t_frame["median_s"] * 1000, 3),
                                "frames_per_s": _r(1 / t_frame["median_s"], 1), "frames": t_frame["repeats"]})
            self.log(f"editing {label_p}: render {t_render['median_s'] * 1000:.2f} ms, frame {t_frame['median_s'] * 1000:.2f} ms")
            self.save()
        sec["bf16_vs_fp32_max_abs_diff"] = _r((outputs["bf16"] - outputs["fp32"]).abs().max(), 5)
        sec["bf16_vs_fp32_mean_abs_diff"] = _r((outputs["bf16"] - outputs["fp32"]).abs().mean(), 5)
        if not self.dev.startswith("cuda"):
            sec["note"] = "CPU dry run: bf16 is CPU autocast"

    # --- 2. throughput table ----------------------------------------------------------------
    def table_plan(self) -> tuple[list[dict], list[tuple]]:
        """Every row of the grid, and the measurement groups in priority order."""
        p = self.plan
        rows = []
        for stage in TRAINED_GENERATORS:
            for size in p.table_sizes:
                for prec in PRECISIONS:
                    for cl in (False, True):
                        for comp in (False, True):
                            for b in p.table_batches:
                                rows.append({"stage": stage, "size": size, "batch": b, "precision": prec,
                                             "channels_last": cl, "compile": comp, "status": "pending"})
        sizes_desc = sorted(p.table_sizes, reverse=True)
        groups: list[tuple] = []  # (tier, stage, size, precision, channels_last, compile, batches)
        for size in sizes_desc:  # tier 1: fp32 and bf16, no channels_last, no compile
            for stage in TRAINED_GENERATORS:
                for prec in PRECISIONS:
                    groups.append((1, stage, size, prec, False, False, tuple(p.table_batches)))
        for size in sizes_desc:  # tier 2: bf16 + channels_last
            for stage in TRAINED_GENERATORS:
                groups.append((2, stage, size, "bf16", True, False, tuple(p.table_batches)))
        for stage, size, b, prec in p.compile_rows[:1]:  # tier 3: the first compile row
            groups.append((3, stage, size, prec, None, True, (b,)))
        for size in sizes_desc:  # tier 4: fp32 + channels_last
            for stage in TRAINED_GENERATORS:
                groups.append((4, stage, size, "fp32", True, False, tuple(p.table_batches)))
        for stage, size, b, prec in p.compile_rows[1:]:  # tier 5: more compile rows
            groups.append((5, stage, size, prec, None, True, (b,)))
        return rows, groups

    def throughput(self, sec: dict) -> None:
        import torch

        p = self.plan
        deadline = self.clock.deadline(p.deadlines["throughput"])
        rows, groups = self.table_plan()
        index = {(r["stage"], r["size"], r["batch"], r["precision"], r["channels_last"], r["compile"]): r for r in rows}
        sec.update(preset=p.table_preset, sizes=list(p.table_sizes), batches=list(p.table_batches),
                   vgg_weights=p.table_overrides.get("model.loss.vgg_weights", p.vgg_weights if p.table_preset == "paper" else "preset's"),
                   how="prepared_trainer(stage, cfg, tmp) per (stage, size, precision, channels_last, compile), "
                       "then train_step on the first b faces of one batch; first call, then the median of "
                       f"{p.min_repeat}-{p.max_repeat} synchronised steps after {p.warmup} warm-up step(s); EBST "
                       "draws M^ref from an in-memory dataset (no rendering in the timed loop); images/s = batch / "
                       "step; peak = torch.cuda.max_memory_allocated after reset_peak_memory_stats",
                   rows=rows)
        self.save()
        caches: dict[int, object] = {}
        compile_cost = p.compile_estimate_s
        compile_broken = None

        def best_cl(stage, size, b, prec):
            cands = [index.get((stage, size, b, prec, cl, False)) for cl in (False, True)]
            cands = [r for r in cands if r and r.get("status") == "ok"]
            return max(cands, key=lambda r: r["images_per_s"])["channels_last"] if cands else True

        for tier, stage, size, prec, cl, comp, batches in groups:
            if comp:
                cl = best_cl(stage, size, batches[0], prec)
            todo = [index[(stage, size, b, prec, cl, comp)] for b in batches]
            todo = [r for r in todo if r["status"] == "pending"]
            if not todo:
                continue
            for r in todo:
                r["tier"] = tier
            left = deadline - time.perf_counter()
            reason = None
            if tier > p.max_tier:
                reason = f"dry run: priority tier {tier} > {p.max_tier}"
            elif comp and not p.allow_compile:
                reason = "dry run: torch.compile is not cheap on the CPU"
            elif comp and compile_broken:
                reason = f"torch.compile failed earlier ({compile_broken})"
            elif comp and left < compile_cost:
                reason = f"budget: {left:.0f} s left, compile row estimated {compile_cost:.0f} s"
            elif left < (4.0 if not p.dry_run else 0.5):
                reason = f"budget: {left:.0f} s left"
            if reason:
                for r in todo:
                    r.update(status="skipped", reason=reason)
                if reason.startswith("budget"):
                    sec["budget_exhausted"] = True
                continue
            t_group = time.perf_counter()
            trainer = batch = None
            try:
                cfg = self.paper_cfg(size, preset=p.table_preset, **{
                    "train.amp": PRECISIONS[prec], "train.channels_last": bool(cl), "train.compile": bool(comp),
                    "train.batch_size": max(batches), **p.table_overrides})
                if size not in caches:
                    caches[size] = _cached_faces(cfg, 2 * max(p.table_batches) + 2, workers=min(p.num_workers, 8))
                run_dir = self.ensure_vae(cfg) if stage == "ebst" else self.work / f"table_{stage}_{size}"
                if comp:
                    with contextlib.suppress(Exception):
                        torch._dynamo.reset()
                torch.manual_seed(0)
                trainer, batch = prepared_trainer(stage, cfg, run_dir, device=self.dev, dataset=caches[size])
                if stage == "ebst":
                    sec["ebst_refs_in_batch"] = "ref_label" in batch
                build_s = time.perf_counter() - t_group
                prev_step, prev_b = None, 1
                oom_at = None
                for r in todo:
                    b = r["batch"]
                    r["build_s"] = _r(build_s, 2)
                    if oom_at is not None:
                        r.update(status="OOM", reason=f"not tried: batch {oom_at} was out of memory")
                        continue
                    est = prev_step * b / prev_b * (p.warmup + p.min_repeat) if prev_step else 0.0
                    if time.perf_counter() + est > deadline:
                        r.update(status="skipped", reason="budget")
                        sec["budget_exhausted"] = True
                        continue
                    sub = _first(batch, b)
                    try:
                        _free(self.dev)
                        _peak_reset(self.dev)
                        t = _time_steps(lambda tr=trainer, sb=sub: tr.train_step(sb), self.dev, p.warmup, p.min_repeat,
                                        p.max_repeat, p.target_s, deadline)
                        r.update(status="ok", step_s=_r(t["median_s"], 5), first_step_s=_r(t["first_s"], 3),
                                 repeats=t["repeats"], images_per_s=_r(b / t["median_s"], 2),
                                 peak_mem_gib=_peak_gib(self.dev))
                        prev_step, prev_b = t["median_s"], b
                        if comp:
                            r["compile_s"] = _r(t["first_s"], 1)
                            compile_cost = max(10.0, time.perf_counter() - t_group)
                    except Exception as e:
                        if _is_oom(e):
                            r.update(status="OOM", peak_mem_gib=_peak_gib(self.dev))
                            oom_at = b
                        else:
                            raise
                    finally:
                        sub = None
                    self.log(f"table {stage} {size}px b{b} {prec} cl={cl} compile={comp}: {r['status']} "
                             f"{r.get('images_per_s', '')} img/s, {r.get('peak_mem_gib', '')} GiB")
                    self.save()
            except Stopped:
                raise
            except Exception as e:  # noqa: BLE001 - one configuration's failure is a row, not the end
                msg = f"{type(e).__name__}: {e}"[:800]
                for r in todo:
                    if r["status"] == "pending":
                        r.update(status="OOM" if _is_oom(e) else "error", reason=msg)
                if comp and not _is_oom(e):
                    compile_broken = msg[:200]
                if not _is_oom(e):
                    self.problem("throughput", f"{stage} {size}px {prec} cl={cl} compile={comp}: {msg}")
                self.log(f"table group {stage} {size} {prec} cl={cl} compile={comp} failed: {msg[:300]}")
            finally:
                trainer = batch = None
                if comp:
                    with contextlib.suppress(Exception):
                        torch._dynamo.reset()
                _free(self.dev)
                self.save()
        for r in rows:
            r["setting"] = r["precision"] + ("+cl" if r["channels_last"] else "") + ("+compile" if r["compile"] else "")
            if r["status"] == "pending":
                r.update(status="skipped", reason="not in the priority list")
        counts = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        sec["counts"] = counts
        sec["best"] = self.best_settings(rows)
        sec["max_batch_ok"] = {f"{s}@{z}:{prec}{'+cl' if cl else ''}": max(
            (r["batch"] for r in rows if (r["stage"], r["size"], r["precision"], r["channels_last"], r["compile"])
             == (s, z, prec, cl, False) and r["status"] == "ok"), default=None)
            for s in TRAINED_GENERATORS for z in p.table_sizes for prec in PRECISIONS for cl in (False, True)}
        self.save()
        self.data_vs_gpu()
        self.figure_throughput()

    @staticmethod
    def best_settings(rows: list[dict]) -> dict:
        best = {}
        for stage in TRAINED_GENERATORS:
            for size in sorted({r["size"] for r in rows}):
                ok = [r for r in rows if r["stage"] == stage and r["size"] == size and r["status"] == "ok"]
                if ok:
                    r = max(ok, key=lambda r: r["images_per_s"])
                    best[f"{stage}@{size}"] = {k: r[k] for k in ("precision", "channels_last", "compile", "batch",
                                                                  "images_per_s", "peak_mem_gib")}
        return best

    # --- 3. showcase ------------------------------------------------------------------------
    def showcase_setting(self) -> dict:
        """Fastest precision / channels_last without compile for stage I near the showcase size."""
        rows = self.results.section("throughput").get("rows", [])
        ok = [r for r in rows if r.get("status") == "ok" and r["stage"] == "dmn" and not r["compile"]]
        if not ok:
            return {"precision": "fp32", "channels_last": False, "compile": False,
                    "source": "default (no throughput rows measured)"}
        size = min({r["size"] for r in ok})
        ok = [r for r in ok if r["size"] == size]
        b = max(r["batch"] for r in ok)
        r = max((r for r in ok if r["batch"] == b), key=lambda r: r["images_per_s"])
        return {"precision": r["precision"], "channels_last": r["channels_last"], "compile": False,
                "source": f"fastest stage-I row at {size}px, batch {b}, paper widths ({r['images_per_s']} img/s); "
                          "torch.compile left out: its compile time does not pay back within the showcase"}

    def showcase(self, sec: dict) -> None:
        import torch

        from .train import make_trainer
        p = self.plan
        deadline = self.clock.deadline(p.deadlines["showcase"])
        if deadline - time.perf_counter() < p.showcase_min_s:
            sec.update(final_status="skipped", reason=f"budget: under {p.showcase_min_s:.0f} s left")
            return
        setting = self.showcase_setting()
        cfg = _preset(p.showcase_preset).with_overrides({**p.showcase_overrides, "train.amp": PRECISIONS[setting["precision"]],
                                                     "train.channels_last": setting["channels_last"]})
        n_faces = cfg_get(cfg, "data.synth_train")
        t0 = time.perf_counter()
        cached = _cached_faces(cfg, n_faces, workers=max(1, min(14, _cpus() - 1)) if not p.dry_run else 0)
        sec.update(setting=setting, preset=p.showcase_preset, overrides=p.showcase_overrides, faces=len(cached),
                   render_s=_r(time.perf_counter() - t0, 2), stages={},
                   how="step counts from the time left and each stage's measured step time "
                       f"(shares {p.showcase_shares}); LR schedule total = the step count")
        self.save()
        run_dir = self.work / "showcase"
        stages = METHOD_STAGES
        for i, stage in enumerate(stages):
            st = sec["stages"][stage] = {}
            probe = make = None
            t0 = time.perf_counter()
            try:
                torch.manual_seed(0)
                probe, batch = prepared_trainer(stage, cfg, self.work / "showcase_probe" if stage != "ebst" else run_dir,
                                                device=self.dev, dataset=cached)
                t = _time_steps(lambda pr=probe, bt=batch: pr.train_step(bt), self.dev, 2, 3, 5, 0.3)
                step_s = t["median_s"]
            finally:
                probe = batch = None
                _free(self.dev)
            rest = stages[i:]
            avail = deadline - time.perf_counter() - p.showcase_reserve_s - p.fit_overhead_s * len(rest)
            share = p.showcase_shares[stage] / sum(p.showcase_shares[s] for s in rest)
            steps = int(max(0.0, avail) * share * 0.85 / (step_s * 1.1))
            steps = max(p.showcase_min_steps, min(p.showcase_max_steps, steps))
            cfg = cfg.with_overrides({f"train.{stage}_steps": steps, "cadence.log_every": max(1, steps // 100),
                                  "cadence.sample_every": 10**6, "cadence.checkpoint_every": 10**6})
            st.update(probe_step_s=_r(step_s, 5), steps=steps, planned_s=_r(steps * step_s, 1))
            self.log(f"showcase {stage}: {steps} steps at {step_s * 1000:.1f} ms/step (probe)")
            self.save()
            make = make_trainer(stage, cfg, run_dir, device=self.dev, progress=False)
            summary = make.fit(cached, steps=steps)
            make = None
            _free(self.dev)
            st.update(seconds=_r(time.perf_counter() - t0, 2), seconds_per_step=summary.get("seconds_per_step"),
                      images_per_second=summary.get("images_per_second"))
            log = summarize_log(read_jsonl(run_dir / stage / "log.jsonl"))
            st.update({k: log.get(k) for k in ("no_nan", "moving", "primary_key", "primary_first", "primary_last",
                                                "primary_curve", "n_logged")})
            self.save()
        self.export_showcase(sec, cfg, run_dir)

    def export_showcase(self, sec: dict, cfg, run_dir: Path) -> None:
        from safetensors.torch import load_file, save_file
        files = {}
        for key, stage, net in (("showcase_dmn_stage1", "dmn", "dmn"), ("showcase_dmn_ebst", "ebst", "dmn"),
                                ("showcase_maskvae", "vae", "maskvae")):
            ckpt = last_checkpoint(run_dir / stage)
            src = ckpt / f"{net}.safetensors" if ckpt else None
            if src is None or not src.exists():
                files[key] = {"status": "missing", "stage": stage}
                continue
            tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(src)).items()}
            n_params = sum(v.numel() for v in tensors.values() if v.is_floating_point())
            approx = sum(v.numel() * v.element_size() for v in tensors.values())
            name = OUT_FILES[key]
            if approx > MAX_FILE_BYTES - 2**16:
                files[key] = {"status": "too_large", "bytes": approx, "stage": stage,
                              "reason": f"over {MAX_FILE_BYTES} bytes: not written (the GPU tool returns 16 MiB files)"}
                continue
            save_file(tensors, str(self.out / name), metadata={"stage": stage, "net": net, "step": ckpt.name,
                                                              "dtype": "float16 (trained in float32 / autocast)"})
            files[key] = {"status": "ok", "file": name, "stage": stage, "net": net, "checkpoint": ckpt.name,
                          "params": n_params, "bytes": (self.out / name).stat().st_size}
        sec["files"] = files
        # sample grids: the last one of each stage, stacked
        try:
            from PIL import Image
            imgs = []
            for stage in METHOD_STAGES:
                found = sorted((run_dir / stage / "samples").glob("*.png"))
                if found:
                    imgs.append(Image.open(found[-1]).convert("RGB"))
            if imgs:
                w = max(im.width for im in imgs)
                canvas = Image.new("RGB", (w, sum(im.height for im in imgs)), "white")
                y = 0
                for im in imgs:
                    canvas.paste(im, (0, y))
                    y += im.height
                canvas.save(self.out / OUT_FILES["showcase_samples"])
                sec["samples"] = {"file": OUT_FILES["showcase_samples"], "grids": len(imgs)}
        except Exception as e:  # noqa: BLE001
            sec["samples"] = {"error": f"{type(e).__name__}: {e}"}
        conf = {"schema": SCHEMA, "config": cfg.to_dict(), "setting": sec.get("setting"),
                "steps": {s: v.get("steps") for s, v in sec.get("stages", {}).items()},
                "files": files,
                "how_to_load": ("cfg = maskgan.config.Config.from_dict(json.load(open('showcase_config.json'))['config']); "
                                "dmn = maskgan.nn.build_dmn(cfg); maskgan.train.load_weights(dmn, "
                                "'showcase_dmn_ebst_fp16.safetensors')  # fp16 values load into the fp32 "
                                "parameters; the MaskVAE likewise with build_maskvae. To rebuild a run directory, "
                                "write each file as <run>/<stage>/checkpoints/step_N/<net>.safetensors with this "
                                "config (see maskgan.checkpoint)")}
        (self.out / OUT_FILES["showcase_config"]).write_text(json.dumps(_jsonable(conf), indent=1) + "\n")
        self.log(f"showcase exported: {', '.join(v.get('file', k + ' ' + v['status']) for k, v in files.items())}")
        self.save()

    # --- figures ----------------------------------------------------------------------------
    @staticmethod
    def _figure(figsize: tuple[float, float]):
        """A bare figure that is only saved: the process's matplotlib backend is never switched (in a
        notebook that would hide every later figure; maskgan.viz._new_figure)."""
        from .viz import _new_figure
        return _new_figure(figsize, pyplot=False)

    def figure_throughput(self) -> None:
        try:
            p = self.plan
            rows = [r for r in self.results.section("throughput").get("rows", []) if r.get("status") == "ok"]
            sizes = list(p.table_sizes)
            fig = self._figure((4 * 2 * len(sizes), 6.5))
            axes = fig.subplots(2, 2 * len(sizes), squeeze=False)
            for i, stage in enumerate(TRAINED_GENERATORS):
                for j, size in enumerate(sizes):
                    for metric, col in (("images_per_s", j), ("peak_mem_gib", len(sizes) + j)):
                        ax = axes[i][col]
                        sel = [r for r in rows if r["stage"] == stage and r["size"] == size and r.get(metric) is not None]
                        for setting in sorted({r["setting"] for r in sel}):
                            pts = sorted((r["batch"], r[metric]) for r in sel if r["setting"] == setting)
                            style = "o" if "compile" in setting else "o-"
                            ax.plot([x for x, _ in pts], [y for _, y in pts], style, label=setting, ms=4)
                        ax.set_xscale("log", base=2)
                        ax.set_xticks(list(p.table_batches))
                        ax.set_xticklabels([str(b) for b in p.table_batches])
                        ax.set_title(f"{'stage I' if stage == 'dmn' else 'EBST'} {size}px: "
                                     f"{'images/s' if metric == 'images_per_s' else 'peak GiB'}", fontsize=9)
                        ax.set_xlabel("batch", fontsize=8)
                        ax.grid(alpha=0.3)
                        if sel:
                            ax.legend(fontsize=6)
                        elif metric == "peak_mem_gib" and not self.dev.startswith("cuda"):
                            ax.text(0.5, 0.5, "no peak memory on the CPU", ha="center", transform=ax.transAxes)
            m = self.results.data.get("machine", {})
            fig.suptitle(f"MaskGAN kit, {p.table_preset} widths, {m.get('gpu', self.dev)}, torch {m.get('torch')}",
                         fontsize=10)
            self._write_figure(fig, "fig_throughput")
        except Exception as e:  # noqa: BLE001
            self.results.data["errors"].append({"section": "figure_throughput", "error": f"{type(e).__name__}: {e}"})

    def _write_figure(self, fig, key: str) -> None:
        """Lay out, write ``OUT_FILES[key]``, close, and rewrite results.json (it lists the files)."""
        fig.tight_layout()
        fig.savefig(self.out / OUT_FILES[key], dpi=80)
        self.save()

    def figure_checks(self) -> None:
        try:
            sec = self.results.section("correctness")
            show = self.results.section("showcase")
            fig = self._figure((13, 10))
            axes = fig.subplots(3, 3, squeeze=False)
            for i, (title, source) in enumerate(((f"correctness, {sec.get('preset')} {sec.get('size')}px",
                                                  sec.get("stages", {})),
                                                 ("showcase", show.get("stages", {})))):
                for j, stage in enumerate(METHOD_STAGES):
                    ax = axes[i][j]
                    st = source.get(stage, {})
                    curve = [(s, v) for s, v in st.get("primary_curve") or [] if s is not None and v is not None]
                    if curve:
                        ax.plot(*zip(*curve), "-", lw=1)
                    else:
                        ax.text(0.5, 0.5, st.get("status") or "not run", ha="center", transform=ax.transAxes)
                    ax.set_title(f"{title}: {stage} {st.get('primary_key')}\nno NaN {st.get('no_nan')}, "
                                 f"moving {st.get('moving')}", fontsize=8)
                    ax.set_xlabel("step", fontsize=8)
                    ax.grid(alpha=0.3)
            prec = sec.get("bf16_vs_fp32") or {}
            for j, key in enumerate((prec.get("judged_key"), prec.get("d_key"))):
                ax = axes[2][j]
                if key and prec.get("fp32"):
                    steps = range(1, len(prec["fp32"][key]) + 1)
                    ax.plot(steps, prec["fp32"][key], "o-", label="fp32")
                    ax.plot(steps, prec["bf16"][key], "x--", label="bf16")
                    ax.legend(fontsize=7)
                note = " (CPU: both fp32)" if not self.dev.startswith("cuda") else ""
                ax.set_title(f"bf16 vs fp32{note}: {key}\nmax rel diff {prec.get('max_rel_diff', {}).get(key)}, "
                             f"tolerance {prec.get('tolerance_rel')}", fontsize=8)
                ax.set_xlabel("step", fontsize=8)
                ax.grid(alpha=0.3)
            ax = axes[2][2]
            res = (sec.get("resume") or {}).get("stages", {})
            names = [s for s in res if res[s].get("status") == "ok"]
            if names:
                vals = [res[s]["max_abs_diff"] if math.isfinite(res[s]["max_abs_diff"]) else 1.0 for s in names]
                vals = [max(v, 1e-12) for v in vals]
                ax.bar(names, vals, color=["tab:green" if res[s]["identical"] else "tab:red" for s in names])
                reps = [res[s].get("repeat_max_abs_diff") for s in names]
                if any(r is not None for r in reps):
                    ax.plot(names, [max(r or 0, 1e-12) for r in reps], "k_", ms=30, label="uninterrupted repeat")
                    ax.legend(fontsize=7)
                ax.set_yscale("log")
                for x, s in enumerate(names):
                    ax.text(x, vals[x], res[s]["verdict"], ha="center", va="bottom", fontsize=7)
            r = sec.get("resume") or {}
            ax.set_title(f"resume vs uninterrupted: max |weight diff|\n({r.get('preset')} preset, {r.get('size')}px, "
                         f"{r.get('steps')} steps, resumed at {r.get('resumed_at')})", fontsize=8)
            self._write_figure(fig, "fig_checks")
        except Exception as e:  # noqa: BLE001
            self.results.data["errors"].append({"section": "figure_checks", "error": f"{type(e).__name__}: {e}"})

    # --- the whole run ----------------------------------------------------------------------
    def run(self) -> int:
        import torch
        self.results.data["machine"] = self.machine()
        self.save()
        self.log(f"{'DRY RUN on ' if self.plan.dry_run else ''}{self.dev}: budget {self.plan.budget_s:.0f} s, out {self.out}")
        if self.dev.startswith("cuda"):
            torch.cuda.set_device(0)
        self.run_section("data_loading", self.data_loading)
        self.run_section("correctness", self.correctness)
        self.figure_checks()
        self.run_section("editing", self.editing)
        self.run_section("throughput", self.throughput)
        self.run_section("showcase", self.showcase)
        self.figure_checks()
        if not (self.out / OUT_FILES["fig_throughput"]).exists():
            self.figure_throughput()
        statuses = [s["status"] for s in self.results.data["sections"].values()]
        errors = any(s == "error" for s in statuses) or self.results.data["errors"]
        self.results.data["status"] = "done_with_errors" if errors else "done"
        self.save()
        self.log(f"done in {self.clock.elapsed():.1f} s: " +
                 ", ".join(f"{k} {v['status']}" for k, v in self.results.data["sections"].items()))
        return 0


def run(out: Path | str, dry_run: bool = False, budget_s: float | None = None, only: tuple[str, ...] = SECTIONS,
        work: Path | str | None = None, keep_work: bool = False) -> int:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: deterministic cuBLAS for the resume check
    import torch
    if dry_run:
        plan = dry_plan(budget_s or 120.0)
    else:
        plan = gpu_plan(budget_s or 450.0)
        if not torch.cuda.is_available():
            res = Results(out, plan)
            res.data.update(status="no_cuda", errors=[{"section": None, "error": "CUDA is not available"}],
                            machine={"python": platform.python_version(), "torch": torch.__version__,
                                     "cuda_runtime": torch.version.cuda})
            res.save()
            print("gpu_check: CUDA is not available on this machine; use --dry-run for the CPU dry run", file=sys.stderr)
            return 2
    work_dir = Path(work) if work else Path(tempfile.mkdtemp(prefix="maskgan_gpu_check_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    check = GPUCheck(plan, out, work_dir, only)

    def on_signal(signum, frame):
        raise Stopped(f"signal {signum}")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return check.run()
    except Stopped as e:
        check.results.data["status"] = "killed"
        if check.current:
            check.results.section(check.current)["status"] = "killed"
        check.results.data["errors"].append({"section": getattr(check, "killed_in", check.current),
                                             "error": f"stopped: {e}"})
        check.save()
        print(f"gpu_check: stopped ({e}); results so far in {check.results.path}", file=sys.stderr)
        return 124
    except Exception as e:
        check.results.data["status"] = "failed"
        check.results.data["errors"].append({"section": check.current, "error": f"{type(e).__name__}: {e}",
                                             "traceback": traceback.format_exc()[-6000:]})
        check.save()
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if not keep_work:
            shutil.rmtree(work_dir, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m maskgan.gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for results.json, figures and showcase weights (at most 8 files)")
    ap.add_argument("--dry-run", action="store_true", help="the same code path on the CPU with tiny sizes")
    ap.add_argument("--budget-s", type=float, default=None, help="seconds of work (default 450; dry run 120)")
    ap.add_argument("--only", default=None, help=f"comma-separated sections among {', '.join(SECTIONS)}")
    ap.add_argument("--work", default=None, help="scratch folder for run directories (default: a temp folder)")
    ap.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    args = ap.parse_args(argv)
    only = SECTIONS
    if args.only:
        only = tuple(s.strip() for s in args.only.split(",") if s.strip())
        bad = [s for s in only if s not in SECTIONS]
        if bad:
            ap.error(f"unknown section(s) {bad}; sections are {', '.join(SECTIONS)}")
    return run(args.out, dry_run=args.dry_run, budget_s=args.budget_s, only=only, work=args.work,
               keep_work=args.keep_work)


if __name__ == "__main__":
    sys.exit(main())
