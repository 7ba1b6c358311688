"""Screenshots of notebook 04 (EBST) executed at the ``cpu`` preset, shown in JupyterLab in headless
Chromium: ``figures/04_ebst_notebook.png`` (Algorithm 1, the top of the notebook),
``04_ebst_notebook_live.png`` (the live iteration) and ``04_ebst_notebook_losses.png`` (its losses,
the training and the sample grid). A developer's step, run from the repository root::

    .venv/bin/python scripts/notebook_screenshots.py --out figures/

What a reader sees is what a user sees when opening the notebook: the committed notebook with its
own tagged parameters cell, edited in place (``preset = "cpu"``, a relative ``run_dir``), and no
injected "# Parameters" cell next to it (papermill adds one; this script executes the notebook with
nbclient instead). The copy lives in a temporary folder laid out like the repository
(``<tmp>/notebooks/04_ebst.ipynb``, executed there, so ``../runs/lab`` lands in ``<tmp>/runs/lab``
and the checkout is not touched). The notebook borrows the shipped MaskVAE and stage I
(``maskgan.notebook.use_pretrained``) and trains EBST for the preset's iterations: about 13 minutes
on one thread. Then JupyterLab serves the executed copy (free port, a token, its own settings and
workspace folders) and Chromium, driven by Playwright, waits for MathJax and takes the three
screenshots. The three files are written together, atomically, only when all three were taken.

``--workdir DIR`` keeps the executed copy (and its run) in DIR; ``--no-execute`` then takes the
screenshots again from it without re-running the notebook.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maskgan.errors import ConfigError, MaskGANError  # noqa: E402
from maskgan.io import atomic_write_bytes  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "04_ebst.ipynb"
KERNEL = "maskgan"  # the kit's kernel (`make .venv/.installed` installs it into the venv)
CHROMIUM = Path("/usr/bin/chromium")
# As in tests/test_browser.py: without the background-networking flags Chromium tries to reach update
# and sync services, which a closed network refuses, and page loads stall.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1500, "height": 1700}
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"  # papermill's


@dataclass(frozen=True)
class Shot:
    """One screenshot: the notebook scrolled so that ``anchor``'s cell is at the top. ``anchor`` is
    code the cell *after* the wanted top cell contains (code changes less often than prose, and the
    markdown cell before it is the section's text), or None for the top of the notebook."""
    name: str
    anchor: str | None


SHOTS = (Shot("04_ebst_notebook.png", None),
         Shot("04_ebst_notebook_live.png", "inspect_training.source(EBSTTrainer"),
         Shot("04_ebst_notebook_losses.png", "it.loss_table()"))


# --- the notebook as a user opens it ------------------------------------------------------------

def _set_assignment(source: str, name: str, value: str, where: str) -> str:
    """``source`` with the literal of the top-level assignment ``name = ...`` replaced by ``value``
    (a Python literal), the line's comment kept."""
    pattern = re.compile(rf"^({re.escape(name)}\s*=\s*)(\"[^\"\n]*\"|'[^'\n]*'|[^#\n]*?)(\s*(#.*)?)$", re.M)
    matches = pattern.findall(source)
    if len(matches) != 1:
        raise ConfigError(f"{where}: expected one line `{name} = ...` in the parameters cell, found {len(matches)}")
    return pattern.sub(lambda m: m.group(1) + value + m.group(3), source, count=1)


def prepare_notebook(path: Path | str, *, preset: str = "cpu", run_dir: str = "../runs/lab"):
    """The notebook at ``path`` as a user would run it at ``preset``: its one tagged parameters cell
    edited in place (``preset`` and a *relative* ``run_dir``), any papermill-injected parameters cell
    dropped, every output cleared."""
    import nbformat
    path = Path(path)
    if Path(run_dir).is_absolute():
        raise ConfigError(f"run_dir {run_dir!r} is absolute; the screenshots must not show a machine path: "
                          f"expected a path relative to the notebooks/ folder, e.g. '../runs/lab'")
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read notebook {path}: {e}") from e
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    tagged = [c for c in nb.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ConfigError(f"{path}: expected one cell tagged {PARAMETERS_TAG!r}, found {len(tagged)}")
    cell = tagged[0]
    source = _set_assignment(cell.source, "preset", json.dumps(preset), str(path))
    cell.source = _set_assignment(source, "run_dir", json.dumps(run_dir), str(path))
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    return nb


def parameters_cells(nb) -> list:
    """The cells that set parameters: tagged ``parameters`` or ``injected-parameters``."""
    return [c for c in nb.cells if {PARAMETERS_TAG, INJECTED_TAG} & set(c.get("metadata", {}).get("tags", []))]


def anchor_index(nb, shot: Shot) -> int:
    """The index of the cell that ``shot`` puts at the top of the screen: 0 without an anchor, else
    the cell before the first code cell containing the anchor (its section's text)."""
    if shot.anchor is None:
        return 0
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and shot.anchor in c.source:
            return max(0, i - 1)
    raise ConfigError(f"{shot.name}: no code cell of the notebook contains {shot.anchor!r}; the notebook changed, "
                      f"so update SHOTS in {Path(__file__).name}")


def execute(nb, workdir: Path, *, timeout: int = 3600):
    """Run every cell of ``nb`` with the kit's kernel in ``workdir`` (one torch thread), in place."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=timeout, resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except CellExecutionError as e:
        raise MaskGANError(f"notebook {NOTEBOOK.name} failed at the {preset_of(nb)!r} preset:\n{e}") from e
    return nb


def preset_of(nb) -> str:
    match = re.search(r'^preset\s*=\s*"([^"]*)"', parameters_cells(nb)[0].source, re.M)
    return match.group(1) if match else "?"


# --- JupyterLab in Chromium -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(folder: Path) -> dict[str, str]:
    """Environment variables that give JupyterLab its own config, data, settings and workspace
    folders under ``folder``: every cell rendered (no windowing: cells out of view exist, so they can
    be scrolled to), no news announcement, a fresh workspace (no restored tabs or sidebars), and a
    trust database of its own (see :func:`trust`)."""
    config, settings, workspaces = folder / "config", folder / "settings", folder / "workspaces"
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    workspaces.mkdir(parents=True, exist_ok=True)
    return {"JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(data), "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(workspaces)}


def trust(path: Path, data_dir: Path) -> None:
    """Sign the executed notebook in the trust database of ``data_dir`` (the server's
    ``JUPYTER_DATA_DIR``): JupyterLab renders the outputs of a trusted notebook only, and without it
    the training cell's progress bar (an ipywidget, its final state saved by nbclient) would show
    its text fallback, frozen at 0 %."""
    import nbformat
    from nbformat.sign import NotebookNotary
    nb = nbformat.read(path, as_version=4)
    NotebookNotary(data_dir=str(data_dir)).sign(nb)


@contextmanager
def jupyter_lab(root: Path, settings: Path):
    """JupyterLab serving ``root`` on a free localhost port; yields the base URL with its token. The
    server (its own process group, kernels included) is stopped afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, **lab_settings(settings)}
    for nb in root.glob("*.ipynb"):
        trust(nb, Path(env["JUPYTER_DATA_DIR"]))
    log = settings / "lab.log"
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise MaskGANError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise MaskGANError(f"jupyter lab did not answer on {url} within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    from maskgan.pipeline import stop_process_group
    stop_process_group(proc, grace=15)


_WAIT_RENDERED = """([n, widgets]) => {
  const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
  if (cells.length < n) return false;
  // the widgets (a training cell's progress bar) drawn from the state saved in the notebook
  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
  if (outputs.some(e => e.innerText.startsWith('Loading widget'))) return false;
  if (document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length < widgets) return false;
  // MathJax 3 has typeset every formula (no raw $...$ left in a rendered markdown cell) and every image has loaded
  const md = [...document.querySelectorAll('.jp-MarkdownOutput')];
  if (md.some(e => /\\$[^$\\s][^$]*\\$/.test(e.innerText))) return false;
  if (document.querySelectorAll('mjx-container').length === 0) return false;
  return [...document.querySelectorAll('.jp-Notebook img')].every(i => i.complete && i.naturalWidth > 0);
}"""


def _widget_outputs(nb) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def take_screenshots(executed: Path, nb, shots=SHOTS) -> dict[str, bytes]:
    """PNG bytes of each shot of the executed notebook, opened in JupyterLab in headless Chromium."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
    if not CHROMIUM.exists():
        raise MaskGANError(f"no browser: {CHROMIUM} is missing (`apt-get install -y chromium`)")
    tops = {s.name: anchor_index(nb, s) for s in shots}
    with tempfile.TemporaryDirectory(prefix="lab-settings-") as settings, \
            jupyter_lab(executed.parent, Path(settings)) as (url, token), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/doc/tree/{executed.name}?token={token}", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function(_WAIT_RENDERED, arg=[len(nb.cells), _widget_outputs(nb)], timeout=90_000,
                                   polling=500)
            # widgets restored from the saved state are not connected to a kernel, and ipywidgets marks each
            # with a red broken-link icon; a user who ran the cell saw the bar without them
            page.add_style_tag(content=".jupyter-widgets-disconnected::before { display: none !important; }")
            page.keyboard.press("Escape")  # command mode: no cursor blinking in a cell
            page.wait_for_timeout(1500)  # let the layout settle after the last formula
            out = {}
            for shot in shots:
                page.evaluate("(i) => document.querySelectorAll('.jp-Notebook .jp-Cell')[i]"
                              ".scrollIntoView({block: 'start'})", tops[shot.name])
                page.wait_for_timeout(800)
                out[shot.name] = page.screenshot()
            return out
        except PlaywrightError as e:  # a timeout included: say what did not happen
            raise MaskGANError(f"JupyterLab at {url} did not show {executed} fully rendered (cells, widgets, "
                               f"MathJax, images): {str(e).splitlines()[0]}") from e
        finally:
            browser.close()


# --- the command ------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "figures", help="where the three PNGs go (default: figures/)")
    ap.add_argument("--preset", default="cpu", help="the preset the notebook runs at (default: cpu)")
    ap.add_argument("--run-dir", default="../runs/lab", help="run_dir, relative to notebooks/ (default: ../runs/lab)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep the executed copy and its run here (default: a temporary folder, removed)")
    ap.add_argument("--no-execute", action="store_true",
                    help="screenshot the copy already executed in --workdir instead of running the notebook")
    args = ap.parse_args(argv)
    if args.no_execute and args.workdir is None:
        ap.error("--no-execute needs --workdir DIR (the folder of an earlier run of this script)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the kernel inherits these: one torch thread
    os.environ.setdefault("MASKGAN_THREADS", "1")
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="nb-screenshots-")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir.resolve()
    notebooks = workdir / "notebooks"
    executed = notebooks / NOTEBOOK.name
    try:
        if args.no_execute:
            import nbformat
            if not executed.exists():
                raise ConfigError(f"{executed} does not exist: run once with --workdir {args.workdir} first")
            nb = nbformat.read(executed, as_version=4)
        else:
            import nbformat
            nb = prepare_notebook(NOTEBOOK, preset=args.preset, run_dir=args.run_dir)
            notebooks.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            print(f"executing {NOTEBOOK.name} at the {args.preset} preset in {notebooks} (one torch thread) ...",
                  flush=True)
            execute(nb, notebooks)
            nbformat.write(nb, executed)
            print(f"executed in {time.monotonic() - t0:.0f} s", flush=True)
        shots = take_screenshots(executed, nb)
        written = [atomic_write_bytes(args.out / name, data) for name, data in shots.items()]
        for path in written:
            print(f"figure: {path}")
    except MaskGANError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
