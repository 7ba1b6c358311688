"""The GPU check script (maskgan.gpu_check) on the CPU: its dry run, without the notebook stack.

The GPU machine it is written for has no papermill, ipywidgets, ipycanvas, voila, nbformat or
Jupyter. Each test runs Python in a subprocess whose ``sys.meta_path`` starts with a finder that
makes importing those packages (and IPython / ipykernel, which come with Jupyter) raise ImportError.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).absolute().parents[1]
BLOCKED = ("papermill", "ipywidgets", "ipycanvas", "voila", "nbformat", "IPython", "ipykernel")

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys

    class NotebookStackBlocker(importlib.abc.MetaPathFinder):
        blocked = {BLOCKED!r}

        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in self.blocked or top.lower().startswith("jupyter"):
                raise ImportError(f"{{name}} is blocked: the GPU machine has no notebook stack")
            return None

    sys.meta_path.insert(0, NotebookStackBlocker())
""")


def _python(code: str, timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, "-c", BLOCKER + code], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_blocker_blocks_the_notebook_stack_and_the_kit_imports_without_it():
    code = textwrap.dedent("""
        import importlib
        for name in ("papermill", "ipywidgets", "ipycanvas", "voila", "nbformat", "jupyter_client", "IPython"):
            try:
                importlib.import_module(name)
            except ImportError:
                continue
            raise SystemExit(f"the blocker let {name} through")
        for name in ("maskgan.train", "maskgan.evaluation", "maskgan.bench", "maskgan.gpu_check"):
            try:
                importlib.import_module(name)
            except ImportError as e:
                import traceback
                traceback.print_exc()
                raise SystemExit(f"importing {name} needs the notebook stack: {e}")
        assert "torchvision" not in sys.modules, "something imported torchvision"
        print("imports ok")
    """)
    proc = _python(code, timeout=600)  # a guard against a hang, not a speed test: a loaded machine is slow
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "imports ok" in proc.stdout


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check_out")
    work = tmp_path_factory.mktemp("gpu_check_work")
    code = textwrap.dedent(f"""
        import runpy
        import matplotlib
        matplotlib.use("svg")  # a backend of the caller's (a notebook's inline one): the figures must not switch it
        # a generous budget: the dry run checks code paths, and a loaded machine must not cut sections short
        sys.argv = ["maskgan.gpu_check", "--out", {str(out)!r}, "--dry-run", "--budget-s", "1800", "--work", {str(work)!r}]
        try:
            runpy.run_module("maskgan.gpu_check", run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            blocked = [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
            assert not blocked, blocked
            assert "torchvision" not in sys.modules, "something imported torchvision"
            assert matplotlib.get_backend() == "svg", f"the figures switched the backend to {{matplotlib.get_backend()}}"
            raise SystemExit(code)
    """)
    # A guard against a hang, as long as the dry run's own budget: 180 s ran out on a 2-core machine at
    # load average 12 (the dry run alone takes about 40 s there when the load is moderate).
    proc = _python(code, timeout=1800)
    return proc, out


def test_dry_run_exits_cleanly_and_leaves_only_returnable_files(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    from maskgan.gpu_check import MAX_FILE_BYTES, OUT_FILES
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8, files  # the GPU tool returns at most 8 files
    assert set(files) <= set(OUT_FILES.values()), files
    assert set(files) == set(OUT_FILES.values()), f"missing: {set(OUT_FILES.values()) - set(files)}"
    for name in files:
        assert (out / name).stat().st_size <= MAX_FILE_BYTES, name
        assert all(c.isalnum() or c in "._-" for c in name), name


def test_dry_run_results_have_every_section_and_field(dry_run):
    _, out = dry_run
    r = json.loads((out / "results.json").read_text())
    assert r["schema"] == "maskgan.gpu_check/1"
    assert r["dry_run"] is True and r["status"] == "done", (r["status"], r["errors"])
    assert r["errors"] == []
    for key in ("python", "torch", "device", "cpu_count"):
        assert key in r["machine"]
    secs = r["sections"]
    assert set(secs) == {"data_loading", "correctness", "editing", "throughput", "showcase"}
    for name, sec in secs.items():
        assert sec["status"] == "ok", (name, sec.get("error"), sec.get("traceback"))
        assert isinstance(sec["seconds"], float)

    data = secs["data_loading"]
    assert data["single_process"]["faces_per_s"] > 0
    assert data["loaders"] and all(row["faces_per_s"] > 0 for row in data["loaders"])
    assert any(row["stage"] == "ebst" and "ref_mask_render_ms_per_iter" in row for row in data["vs_gpu"])

    corr = secs["correctness"]
    assert set(corr["stages"]) == {"vae", "dmn", "ebst"}
    for stage, st in corr["stages"].items():
        assert st["status"] == "ok", (stage, st)
        assert st["no_nan"] is True and st["moving"] is True, (stage, st)
        assert st["primary_key"] and st["first"] and st["last"]
        assert st["n_logged"] == corr["steps"]
    prec = corr["bf16_vs_fp32"]
    assert prec["status"] == "ok" and prec["judged_key"] in prec["fp32"]
    assert len(prec["fp32"][prec["judged_key"]]) == len(prec["bf16"][prec["judged_key"]]) == prec["steps"]
    assert prec["within_tolerance"] is True and prec["tolerance_rel"] > 0
    resume = corr["resume"]
    assert set(resume["stages"]) == {"vae", "dmn", "ebst"}
    assert resume["all_identical"] is True, resume  # the CPU is deterministic: bitwise equal
    for st in resume["stages"].values():
        assert st["tensors"] > 0 and st["files"] and st["verdict"] == "identical"
    assert corr["passed"] == {"no_nan": True, "moving": True, "resume_identical": True, "resume_ok": True,
                              "bf16_within_tolerance": True}

    edit = secs["editing"]
    assert [row["precision"] for row in edit["rows"]] == ["fp32", "bf16"]
    assert all(row["render_ms"] > 0 and row["frame_ms"] > 0 for row in edit["rows"])
    assert edit["style_ms"] > 0

    table = secs["throughput"]
    rows = table["rows"]
    stages, sizes, batches = ("dmn", "ebst"), table["sizes"], table["batches"]
    assert len(rows) == len(stages) * len(sizes) * len(batches) * 2 * 2 * 2  # the whole grid, every row recorded
    for row in rows:
        assert {"stage", "size", "batch", "precision", "channels_last", "compile", "status", "setting"} <= set(row)
        assert row["status"] in ("ok", "OOM", "skipped", "error")
        if row["status"] == "ok":
            assert row["images_per_s"] > 0 and row["step_s"] > 0 and "peak_mem_gib" in row
        if row["status"] == "skipped":
            assert row["reason"]
    ok = [row for row in rows if row["status"] == "ok"]
    assert {(row["stage"], row["precision"]) for row in ok} == {(s, p) for s in stages for p in ("fp32", "bf16")}
    assert any(row["channels_last"] for row in ok)
    assert all(row["status"] == "skipped" for row in rows if row["compile"])  # no compile in the dry run
    assert "dmn@32" in table["best"]

    show = secs["showcase"]
    assert set(show["stages"]) == {"vae", "dmn", "ebst"}
    for st in show["stages"].values():
        assert st["steps"] >= 2 and st["no_nan"] is True
    assert {v["status"] for v in show["files"].values()} == {"ok"}


def test_showcase_weights_load_into_the_kit(dry_run):
    import torch
    from safetensors.torch import load_file

    from maskgan.config import Config
    from maskgan.nn import build_dmn, build_maskvae
    _, out = dry_run
    conf = json.loads((out / "showcase_config.json").read_text())
    cfg = Config.from_dict(conf["config"])
    for name, build in (("showcase_dmn_ebst_fp16.safetensors", build_dmn),
                        ("showcase_dmn_stage1_fp16.safetensors", build_dmn),
                        ("showcase_maskvae_fp16.safetensors", build_maskvae)):
        tensors = load_file(str(out / name))
        assert all(t.dtype == torch.float16 for t in tensors.values() if t.is_floating_point())
        net = build(cfg)
        net.load_state_dict(tensors)  # fp16 values into the fp32 parameters
        assert next(net.parameters()).dtype == torch.float32
