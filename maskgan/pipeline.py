"""Run the numbered notebooks headless with papermill, in order, into a run directory.

The notebooks in ``notebooks/`` are the kit's walkthrough of the paper: ``00_data``,
``01_maskvae_pretraining``, ... Each starts with a cell tagged ``parameters`` (literals only);
papermill injects the pipeline's values after it (``preset``, ``run_dir``, ``data``,
``data_root``, ``device``, ``seed``, ``overrides``) and writes the executed copy, with all its
outputs, to ``<run_dir>/notebooks/``.

A notebook that already ran successfully with the same parameters, the same resolved config (so a
changed preset counts; for a notebook that trains a stage, only the config keys that change that
stage's weights, see :mod:`maskgan.stages`) and the same source is skipped, so an interrupted pipeline resumes where it
stopped; once one notebook runs, every later one runs too, as it reads what the earlier ones wrote
(``force=True`` re-runs everything). The
record lives in ``<run_dir>/pipeline.json``, written atomically after every notebook.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import PipelineError
from .io import atomic_write_bytes, atomic_write_json, read_json

__all__ = [
    "NOTEBOOK_DIR", "KERNEL_NAME", "PipelineError", "NotebookResult", "discover_notebooks", "in_pipeline",
    "run_pipeline", "publish_figures", "publish_pretrained_figures", "PipelineInterrupted", "stop_process_group",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The notebooks of a source checkout (the kit is installed in editable mode).
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
#: Kernel registered by ``make`` in the kit's virtual environment; ``python3`` is the fallback.
KERNEL_NAME = "maskgan"
STATE_FILE = "pipeline.json"
_NOTEBOOK_RE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


@dataclass
class NotebookResult:
    name: str           # e.g. "00_data"
    status: str         # "ok" or "skipped"
    seconds: float      # wall time of this run (0 when skipped)
    output: Path        # the executed copy


def in_pipeline(path: Path | str) -> bool:
    """Whether a numbered notebook belongs to the pipeline: all do except those whose metadata says
    ``"maskgan": {"pipeline": false}`` (07_real_faces: it needs downloaded weights)."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return True  # papermill reports an unreadable notebook when it runs it
    return bool(meta.get("maskgan", {}).get("pipeline", True))


def discover_notebooks(notebook_dir: Path | str = NOTEBOOK_DIR, *, everything: bool = False) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of a folder that the pipeline runs, in order
    (``everything=True``: also those outside the pipeline, see :func:`in_pipeline`)."""
    notebook_dir = Path(notebook_dir)
    if not notebook_dir.is_dir():
        raise PipelineError(f"notebook folder {notebook_dir} does not exist; the pipeline runs from a "
                            "source checkout of the kit (git clone, then `make demo`)")
    found = sorted(p for p in notebook_dir.iterdir()
                   if _NOTEBOOK_RE.match(p.name) and (everything or in_pipeline(p)))
    if not found:
        raise PipelineError(f"no numbered notebooks (NN_name.ipynb) in {notebook_dir}")
    return found


def _select(notebooks: list[Path], only: Iterable[str] | None) -> list[Path]:
    if not only:
        return notebooks
    wanted = [str(o).strip() for o in only if str(o).strip()]

    def matches(nb: Path, w: str) -> bool:  # "01", "01_maskvae_pretraining"
        return nb.stem == w or nb.stem[:2] == w.zfill(2)

    chosen = [nb for nb in notebooks if any(matches(nb, w) for w in wanted)]
    unknown = [w for w in wanted if not any(matches(nb, w) for nb in notebooks)]
    if unknown:
        raise PipelineError(f"--only names {', '.join(unknown)}, which match no notebook; "
                            f"available: {', '.join(nb.stem for nb in notebooks)}")
    return chosen


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _kernel_name() -> str:
    """The kit's registered kernel if present, else the kernel of the running interpreter."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
        if KERNEL_NAME in KernelSpecManager().find_kernel_specs():
            return KERNEL_NAME
    except Exception:  # pragma: no cover - jupyter_client is a papermill dependency
        pass
    return "python3"


def _kernel_manager_class():
    """How papermill starts each notebook's kernel: over local IPC sockets where the OS has them.

    Over TCP (jupyter_client's default) every kernel logs "Kernel is running over TCP without
    encryption" to the terminal, once per notebook of ``make demo``. An IPC socket is a file only
    this user can open (in Jupyter's runtime folder, mode 0700): nothing goes over the network, so
    there is nothing to encrypt and nothing to warn about. Windows has no IPC transport in ZeroMQ:
    there the default (TCP on localhost, with its warning) stays; ``None`` means that default."""
    if os.name == "nt":
        return None
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _ipc_transport(self):
            return "ipc"

        @default("ip")
        def _ipc_path(self):  # an absolute, unique prefix: a relative one lands in the working directory
            runtime = Path(jupyter_runtime_dir())
            runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
            return str(runtime / f"maskgan-{uuid.uuid4().hex[:12]}")  # short: a socket path has ~100 bytes

    return IPCKernelManager


@contextmanager
def _environment(values: dict[str, str]):
    """``os.environ`` with ``values`` set, restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _notebook_config(name: str, cfg) -> dict:
    """The part of the resolved config that decides what a notebook computes: for a notebook that
    trains a stage, that stage's identity (:func:`maskgan.stages.identity`) and step budget, so
    that changing evaluation or cadence settings does not re-run training notebooks; for the
    others, the whole config. The preset's values count, not just its name."""
    from .stages import STAGES, identity
    trains = [s for s in STAGES.values() if s.notebook == name]
    if not trains:
        return cfg.to_dict()
    return {s.name: {"identity": identity(s, cfg), "steps": s.steps(cfg)} for s in trains}


def _load_state(run_dir: Path) -> dict:
    path = run_dir / STATE_FILE
    return read_json(path) if path.exists() else {"notebooks": {}}


def run_pipeline(
    preset: str,
    run_dir: Path | str,
    *,
    data: str = "",
    data_root: str = "",
    device: str = "auto",
    seed: int = 0,
    overrides: dict | None = None,
    only: Iterable[str] | None = None,
    force: bool = False,
    notebook_dir: Path | str = NOTEBOOK_DIR,
    kernel_name: str | None = None,
    kernel_env: dict[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> list[NotebookResult]:
    """Execute the notebooks in order; return what ran and what was skipped.

    ``kernel_env``: environment variables for the notebooks' kernels (set before torch loads in
    them: the demo's thread count and instruction-set pins, see :mod:`maskgan.device`); each
    notebook's record in ``pipeline.json`` keeps them, so the demo summary can say what its numbers
    were computed with.

    Raises :class:`PipelineError` naming the notebook and the failing cell when one fails; the
    executed copy (with the traceback in it) stays in ``<run_dir>/notebooks/``.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    run_dir = Path(run_dir).resolve()
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    notebooks = _select(discover_notebooks(notebook_dir), only)
    params = {"preset": preset, "run_dir": str(run_dir), "data": data, "data_root": str(data_root or ""),
              "device": device, "seed": int(seed), "overrides": dict(overrides or {})}
    from .config import make_config
    cfg = make_config(preset, data=data, data_root=data_root, device=device, seed=seed, overrides=overrides)
    state = _load_state(run_dir)
    kernel = kernel_name or _kernel_name()
    results = []
    for i, nb in enumerate(notebooks, 1):
        output = out_dir / nb.name
        key = {"params": _digest({k: v for k, v in params.items() if k != "overrides"}),
               "config": _digest(_notebook_config(nb.stem, cfg)),
               "source": _digest(nb.read_bytes().decode("utf-8"))}
        prefix = f"[{i}/{len(notebooks)}] {nb.stem}"
        done = state["notebooks"].get(nb.stem, {})
        ran_before = any(r.status == "ok" for r in results)  # a re-run notebook invalidates the later ones
        if (not force and not ran_before and done.get("status") == "ok" and done.get("key") == key
                and output.exists()):
            log(f"{prefix}: skipped (already executed with these parameters; --force re-runs it)")
            results.append(NotebookResult(nb.stem, "skipped", 0.0, output))
            continue
        log(f"{prefix}: running ...")
        start = time.perf_counter()
        record = {"key": key, **({"kernel_env": dict(kernel_env)} if kernel_env else {})}
        state["notebooks"][nb.stem] = {"status": "running", **record}
        atomic_write_json(run_dir / STATE_FILE, state)
        try:
            with _ctrl_c_ends_the_kernel(), _environment(kernel_env or {}):  # the kernel inherits the env
                try:
                    pm.execute_notebook(str(nb), str(output), parameters=params, kernel_name=kernel,
                                        progress_bar=False, cwd=str(nb.parent), kernel_manager_class=_kernel_manager())
                except Exception:
                    if _INTERRUPTED[0]:  # the kernel we ended: nbclient's DeadKernelError, or papermill's error
                        raise KeyboardInterrupt from None
                    raise
                if _INTERRUPTED[0]:  # Ctrl-C as the notebook ended: its kernel may have been killed while closing
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            state["notebooks"][nb.stem] = {"status": "interrupted", **record,
                                           "seconds": round(time.perf_counter() - start, 2)}
            atomic_write_json(run_dir / STATE_FILE, state)
            raise PipelineInterrupted(nb.stem, run_dir) from None
        except PapermillExecutionError as e:
            state["notebooks"][nb.stem] = {"status": "failed", **record,
                                           "seconds": round(time.perf_counter() - start, 2)}
            atomic_write_json(run_dir / STATE_FILE, state)
            raise PipelineError(
                f"notebook {nb.name} failed in cell {e.cell_index} (execution count {e.exec_count}): "
                f"{e.ename}: {e.evalue}\nThe executed copy with the full traceback: {output}") from None
        seconds = time.perf_counter() - start
        state["notebooks"][nb.stem] = {"status": "ok", **record, "seconds": round(seconds, 2)}
        atomic_write_json(run_dir / STATE_FILE, state)
        log(f"{prefix}: ok ({seconds:.1f} s)")
        results.append(NotebookResult(nb.stem, "ok", seconds, output))
    return results


# --- Ctrl-C ------------------------------------------------------------------------------------------
#
# The kernel runs in its own session (jupyter_client starts it so), so a Ctrl-C in the terminal
# reaches the pipeline only. Raised there as a KeyboardInterrupt, it would leave nbclient's cell task
# pending while its cleanup asks the busy kernel to shut down, and the kernel, stopped in the middle
# of a cell, would print a ZMQError traceback after the kit's message. Instead, a Ctrl-C ends the
# kernel at once (SIGKILL); nbclient then sees a dead kernel and returns, and the pipeline says what
# was kept and how to go on. Every file the kit writes is atomic, so nothing it wrote is lost, and a
# notebook that trains resumes from the stage's last checkpoint when it runs again.

_KERNELS: list[int] = []         # process ids of the kernels the pipeline started and that run now
_INTERRUPTED: list[bool] = [False]


class PipelineInterrupted(KeyboardInterrupt):
    """Ctrl-C while ``notebook`` ran; :meth:`message` says what was kept and how to go on."""

    def __init__(self, notebook: str, run_dir: Path):
        super().__init__(notebook)
        self.notebook, self.run_dir = notebook, Path(run_dir)

    def message(self, command: str) -> str:
        from .errors import MaskGANError
        from .run import Run
        from .stages import STAGES
        saved = []
        for stage in (s for s in STAGES.values() if s.notebook == self.notebook):
            try:
                ckpt = Run(self.run_dir, report=None).latest(stage.name)
            except MaskGANError:
                ckpt = None
            saved.append(f"stage {stage.name}: " + (f"the last checkpoint is step {ckpt.step} ({ckpt.path})" if ckpt
                                                      else "no checkpoint was written yet"))
        kept = f" ({'; '.join(saved)})" if saved else ""
        return (f"interrupted during notebook {self.notebook}{kept}; everything written so far is complete. "
                f"Continue with `{command}`: the notebooks that finished are skipped, and a stage in training "
                "resumes from its last checkpoint.")


def _kernel_manager():
    """jupyter_client's kernel manager (over IPC sockets where the OS has them:
    :func:`_kernel_manager_class`), noting the process id of the kernel it starts (see above)."""
    from jupyter_client import AsyncKernelManager
    base = _kernel_manager_class() or AsyncKernelManager

    class PipelineKernelManager(base):
        async def _async_launch_kernel(self, kernel_cmd, **kw) -> None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                _KERNELS.append(process.pid)
                if _INTERRUPTED[0]:  # a Ctrl-C came while the kernel started
                    _kill_session(process.pid)
    return PipelineKernelManager


def stop_process_group(proc, grace: float = 10.0) -> None:
    """End a ``subprocess.Popen`` started with ``start_new_session=True`` and everything it started
    (Voila's or JupyterLab's kernels): SIGTERM to its process group, SIGKILL after ``grace`` seconds."""
    import os
    import signal
    import subprocess
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def _kill_session(pid: int) -> None:
    import os
    import signal
    try:
        os.killpg(pid, signal.SIGKILL)  # the kernel leads its own session
    except (ProcessLookupError, PermissionError):
        pass


class _ctrl_c_ends_the_kernel:
    """Within: a Ctrl-C (SIGINT) kills the running kernel (its whole session; a kernel still starting is
    killed as soon as it has started) and marks the pipeline interrupted, which :func:`run_pipeline`
    checks when the notebook returns; a second Ctrl-C raises KeyboardInterrupt at once."""

    def __enter__(self):
        import logging
        import signal
        import threading
        self.previous, self.log_level = None, logging.getLogger("papermill").level
        _INTERRUPTED[0] = False
        _KERNELS.clear()
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    @staticmethod
    def _handler(signum, frame) -> None:
        import logging
        import signal
        if _INTERRUPTED[0]:  # a second Ctrl-C: stop now, however
            signal.default_int_handler(signum, frame)
        _INTERRUPTED[0] = True
        logging.getLogger("papermill").setLevel(logging.CRITICAL)  # not "Kernel died while waiting ..."
        for pid in list(_KERNELS):
            _kill_session(pid)

    def __exit__(self, *exc) -> None:
        import logging
        import signal
        _KERNELS.clear()
        logging.getLogger("papermill").setLevel(self.log_level)
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def publish_figures(run_dir: Path | str, dest: Path | str = REPO_ROOT / "figures") -> list[Path]:
    """Copy the figures a run saved (``<run_dir>/figures/*.png``, named by notebook number) to
    ``dest`` (the repository's ``figures/``), so the README can show what the kit does."""
    src = Path(run_dir) / "figures"
    dest = Path(dest)
    if not src.is_dir():
        return []
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in sorted(src.glob("*.png")) + sorted(src.glob("*.gif")):
        atomic_write_bytes(dest / f.name, f.read_bytes())
        copied.append(dest / f.name)
    return copied


def publish_pretrained_figures(name: str | None = None, dest: Path | str = REPO_ROOT / "figures") -> list[Path]:
    """The shipped models' figures in ``dest`` (``python -m maskgan publish-figures --pretrained``):
    :func:`maskgan.evaluation.shipped.shipped_figures` (``pretrained_*.png``), and notebook 04's live
    EBST iteration drawn with the shipped MaskVAE, the shipped EBST's DMN and blender and stage I's
    discriminator (``04_ebst_iteration.png``, :func:`maskgan.inspect_training.ebst_iteration`). Nothing
    is written into ``pretrained/``: the iteration's updates stay in memory."""
    from .evaluation.shipped import shipped_figures
    from .inspect_training import ebst_iteration
    from .pretrained import DEFAULT_PRETRAINED, pretrained_run
    from .stages import get_stage
    from .viz import save_figure
    name = name or DEFAULT_PRETRAINED
    written = shipped_figures(name, dest)
    run = pretrained_run(name)
    if run.has("ebst"):
        it = ebst_iteration(run.config("ebst"), run, device="cpu", trained=True)
        spec = get_stage("ebst")  # its MaskVAE (needs) and the stage-I checkpoint it starts from

        def step(stage: str) -> str:
            return f"{run.latest(stage).step:,}"
        fig = it.figure(title=f"Shipped models: one EBST iteration (lambda_inter = {it.lambda_inter:g}): MaskVAE "
                              f"step {step(spec.needs[0])}, DMN and blender of EBST step {step(spec.name)}, D of stage "
                              f"I step {step(spec.starts_from)}")
        written.append(save_figure(fig, Path(dest) / "04_ebst_iteration.png"))
    return written
