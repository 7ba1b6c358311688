"""The papermill pipeline: order, resume, clear failures (on tiny throw-away notebooks)."""
import json
from pathlib import Path

import nbformat
import pytest

from maskgan.pipeline import PipelineError, discover_notebooks, run_pipeline


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('preset = "smoke"\nrun_dir = ""\n')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "00_first.ipynb", "from pathlib import Path\n"
              "p = Path(run_dir) / 'count.txt'\n"
              "p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))\n")
    _notebook(d / "01_second.ipynb", "import json, pathlib\n"
              "pathlib.Path(run_dir, 'preset.json').write_text(json.dumps(preset))\n")
    (d / "notes.ipynb").write_text("{}")  # not numbered: ignored
    return d


def test_discovers_only_numbered_notebooks_in_order(notebooks):
    assert [p.stem for p in discover_notebooks(notebooks)] == ["00_first", "01_second"]


def test_runs_in_order_with_parameters_and_skips_on_rerun(notebooks, tmp_path):
    run = tmp_path / "run"
    lines = []
    results = run_pipeline("smoke", run, notebook_dir=notebooks, log=lines.append)
    assert [r.status for r in results] == ["ok", "ok"]
    assert json.loads((run / "preset.json").read_text()) == "smoke"
    assert (run / "notebooks" / "01_second.ipynb").exists()
    again = run_pipeline("smoke", run, notebook_dir=notebooks, log=lines.append)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert (run / "count.txt").read_text() == "1"
    assert any("skipped" in line for line in lines)


def test_changed_parameters_or_force_rerun(notebooks, tmp_path):
    run = tmp_path / "run"
    run_pipeline("smoke", run, notebook_dir=notebooks, only=["00"], log=lambda s: None)
    run_pipeline("smoke", run, notebook_dir=notebooks, only=["00"], seed=1, log=lambda s: None)
    run_pipeline("smoke", run, notebook_dir=notebooks, only=["00"], seed=1, force=True, log=lambda s: None)
    assert (run / "count.txt").read_text() == "3"
    assert not (run / "preset.json").exists()  # --only 00 did not run 01


def test_failure_names_the_notebook_and_the_cell(notebooks, tmp_path):
    _notebook(notebooks / "02_broken.ipynb", "raise ValueError('mask has label 23')")
    with pytest.raises(PipelineError, match=r"02_broken.ipynb failed in cell \d+.*ValueError: mask has label 23"):
        run_pipeline("smoke", tmp_path / "run", notebook_dir=notebooks, log=lambda s: None)
    state = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert state["notebooks"]["02_broken"]["status"] == "failed"
    assert state["notebooks"]["00_first"]["status"] == "ok"


def test_unknown_only_selection_lists_the_available_notebooks(notebooks, tmp_path):
    with pytest.raises(PipelineError, match="07.*00_first, 01_second"):
        run_pipeline("smoke", tmp_path / "run", notebook_dir=notebooks, only=["07"])


def test_changed_preset_values_rerun_even_with_the_same_parameters(notebooks, tmp_path, monkeypatch):
    """The skip key holds the resolved config: a preset whose values changed (a kit update) re-runs."""
    import maskgan.config as config
    run = tmp_path / "run"
    run_pipeline("smoke", run, notebook_dir=notebooks, only=["00"], log=lambda s: None)
    original = config.PRESETS["smoke"]
    monkeypatch.setitem(config.PRESETS, "smoke",
                        lambda: original().with_overrides({"train.dmn_steps": 5}))
    results = run_pipeline("smoke", run, notebook_dir=notebooks, only=["00"], log=lambda s: None)
    assert [r.status for r in results] == ["ok"]
    assert (run / "count.txt").read_text() == "2"


def test_a_rerun_notebook_reruns_every_later_one(notebooks, tmp_path):
    run = tmp_path / "run"
    run_pipeline("smoke", run, notebook_dir=notebooks, log=lambda s: None)
    nb = notebooks / "00_first.ipynb"
    nb.write_text(nb.read_text().replace("+ 1 if", "+ 10 if"))  # 00's source changed, 01's did not
    results = run_pipeline("smoke", run, notebook_dir=notebooks, log=lambda s: None)
    assert [r.status for r in results] == ["ok", "ok"]
    assert (run / "count.txt").read_text() == "11"


_PIPELINE = """import sys
from maskgan import pipeline
pipeline.run_pipeline.__kwdefaults__["notebook_dir"] = sys.argv[1]  # the test's notebooks
from maskgan.__main__ import main
sys.exit(main(["pipeline", "--preset", "smoke", "--run-dir", sys.argv[2]]))
"""


def test_ctrl_c_during_a_notebook_ends_its_kernel_quietly_and_says_how_to_continue(tmp_path):
    """Issue 22: SIGINT to `pipeline` printed an ipykernel ZMQError traceback after the kit's message,
    which named no command to resume with."""
    import os
    import signal
    import subprocess
    import sys
    import time
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "00_sleeps.ipynb", "import os, pathlib, time\n"
              "pathlib.Path(run_dir, 'kernel.pid').write_text(str(os.getpid()))\n"
              "time.sleep(120)\n")
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _PIPELINE, str(d), str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "kernel.pid").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (run / "kernel.pid").exists(), "the notebook's cell started"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "ZMQError" not in err, err
    assert "interrupted during notebook 00_sleeps" in err
    assert f"Continue with `python -m maskgan pipeline --preset smoke --run-dir {run}`" in err
    assert json.loads((run / "pipeline.json").read_text())["notebooks"]["00_sleeps"]["status"] == "interrupted"
    kernel = int((run / "kernel.pid").read_text())
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(kernel, 0)  # the kernel is gone, not left sleeping


@pytest.mark.skipif(__import__("os").name == "nt", reason="ZeroMQ has no IPC transport on Windows")
def test_kernels_talk_over_ipc_and_print_no_tcp_warning(tmp_path, capfd):
    """Over TCP every kernel logs "Kernel is running over TCP without encryption", once per notebook."""
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "00_transport.ipynb", "import json, pathlib\nfrom ipykernel import get_connection_info\n"
              "pathlib.Path(run_dir, 'transport.json').write_text(get_connection_info())\n")
    run = tmp_path / "run"
    run_pipeline("smoke", run, notebook_dir=d, log=lambda s: None)
    info = json.loads((run / "transport.json").read_text())
    assert info["transport"] == "ipc" and Path(info["ip"]).is_absolute()  # not sockets in the working folder
    assert "without encryption" not in capfd.readouterr().err
