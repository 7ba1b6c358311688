"""The summary printed at the end of ``make demo``: what ran, how long, the metrics, the figures."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .config import flatten
from .io import read_json
from .run import Run
from .text import format_table

__all__ = ["print_summary", "reproduction", "demo_values", "cpu_model", "REFERENCE_FILE", "HEADLINE"]

#: The demo runs measured so far (README's and others): their settings and headline numbers.
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "figures" / "demo_cpu.json"
#: The numbers a demo is compared on: key -> (title, path in metrics.json, digits as printed).
HEADLINE: dict[str, tuple[str, tuple[str, ...], int]] = {
    "dmn/recon_psnr": ("stage I reconstructions PSNR dB", ("eval", "stages", "dmn", "recon_psnr"), 2),
    "dmn/edit_psnr": ("stage I edit PSNR vs truth dB", ("eval", "stages", "dmn", "edit", "psnr"), 2),
    "dmn/recon_miou": ("stage I reconstructions parser mIoU", ("eval", "stages", "dmn", "recon_parse", "mean_iou"), 3),
    "ebst/recon_psnr": ("EBST reconstructions PSNR dB", ("eval", "stages", "ebst", "recon_psnr"), 2),
    "ebst/edit_psnr": ("EBST edit PSNR vs truth dB", ("eval", "stages", "ebst", "edit", "psnr"), 2),
    "ebst/recon_miou": ("EBST reconstructions parser mIoU", ("eval", "stages", "ebst", "recon_parse", "mean_iou"), 3),
    "vae/test_miou": ("MaskVAE held-out mIoU", ("maskvae", "test_miou"), 3),
}


def print_summary(run_dir: Path | str, results: Sequence) -> str:
    """Print (and return) the demo summary for a run directory."""
    run = Run(run_dir)
    parts = ["", "== MaskGAN kit: demo summary ==", ""]
    state = read_json(run.pipeline_file) if run.pipeline_file.exists() else {"notebooks": {}}
    rows = []
    for r in results:
        recorded = state["notebooks"].get(r.name, {}).get("seconds", 0.0)
        rows.append((r.name, r.status, f"{(r.seconds or recorded):.1f}"))
    total = sum(float(r[2]) for r in rows)
    rows.append(("total", "", f"{total:.1f}"))
    parts.append(format_table(rows, ("notebook", "status", "seconds")))
    metrics = run.read_metrics()
    if metrics:
        if "eval" in metrics:
            from .evaluation import format_eval_table
            parts += ["", format_eval_table(metrics)]
        else:
            scalars = [(k, v) for k, v in flatten(metrics).items() if isinstance(v, (int, float, str)) and len(str(v)) < 60]
            parts += ["", format_table(scalars, ("metric", "value"))]
        parts += [f"(all numbers: {run.metrics_file})"]
        if "eval" in metrics:
            parts += _next_to_shipped(metrics["eval"])
    else:
        parts += ["", "(no metrics.json yet: the evaluation notebook writes it)"]
    parts += reproduction(run, metrics, state)
    figures = sorted((run.path / "figures").glob("*.png")) if (run.path / "figures").is_dir() else []
    parts += ["", f"Figures ({len(figures)}) in {run.path / 'figures'}:"]
    parts += [f"  {f.name}" for f in figures]
    parts += ["(the demo leaves the checkout as it is: `make figures` copies them to figures/ for the README)"]
    text = "\n".join(parts)
    print(text)
    return text


def _next_to_shipped(ev: dict) -> list[str]:
    """This run's stage I and EBST next to the shipped (pretrained) ones, on the headline numbers."""
    from .errors import MaskGANError
    from .pretrained import pretrained_label, read_record
    from .stages import generator_stages, get_stage
    try:
        shipped = read_record()["evaluation"]
    except MaskGANError:
        return []
    def get(e, stage, *keys):
        v = e["stages"].get(stage)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v
    def stroke(e, stage):
        return ((e.get("strokes") or {}).get("stages", {}).get(stage) or {}).get("edited_mean_iou")
    method = [s for s in generator_stages() if get_stage(s).role == "generator"]  # stage I, EBST
    rows = []
    for title, read, fmt in (("recon PSNR dB", lambda e, s: get(e, s, "recon_psnr"), "{:.2f}"),
                             ("edit PSNR vs truth dB", lambda e, s: get(e, s, "edit", "psnr"), "{:.2f}"),
                             ("recon parser mIoU", lambda e, s: get(e, s, "recon_parse", "mean_iou"), "{:.3f}"),
                             ("strokes: mIoU vs edited mask", stroke, "{:.3f}")):
        cells = []
        for e in (ev, shipped):
            for stage in method:
                v = read(e, stage) if stage in e["stages"] else None
                cells.append("-" if v is None else fmt.format(v))
        rows.append([title] + cells)
    header = ["metric"] + [f"{get_stage(s).title}, {who}" for who in ("this run", "pretrained") for s in method]
    note = (f"(each mIoU is read by its own run's face parser: {ev['parser']['steps']} steps here, "
            f"{shipped['parser']['steps']} for the shipped models; the PSNRs need no parser)")
    return ["", "This demo next to the shipped models (" + pretrained_label() + "):", format_table(rows, header), note]


# --- does this run reproduce the README's numbers? ------------------------------------------------

def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere what Python's platform module says)."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def demo_values(metrics: dict) -> dict[str, float]:
    """The :data:`HEADLINE` numbers of a run's ``metrics.json`` (those it has)."""
    out = {}
    for key, (_, path, _) in HEADLINE.items():
        v = metrics
        for part in path:
            v = v.get(part) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            out[key] = float(v)
    return out


def _settings(state: dict) -> dict | None:
    """The kernel environment the run's notebooks were executed with (None: they differ)."""
    envs = [nb.get("kernel_env", {}) for nb in state.get("notebooks", {}).values() if nb.get("status") == "ok"]
    return envs[0] if envs and all(e == envs[0] for e in envs) else None


def _trained_threads(run: Run) -> int | None:
    """The thread count every method stage trained with (their summary.json), if they agree."""
    from .stages import method_stages
    seen = set()
    for stage in method_stages():
        path = run.stage_dir(stage) / "summary.json"
        if path.exists():
            seen.add(read_json(path).get("kernels", {}).get("threads"))
    return seen.pop() if len(seen) == 1 else None


def reproduction(run: Run, metrics: dict, state: dict, reference: Path | str = REFERENCE_FILE) -> list[str]:
    """Lines saying whether this demo's numbers are those of a recorded run with the same settings
    (the same CPU model, thread count and kernel pins give the same bits), and whether they lie in
    the band of every recorded run; why not, when they do not."""
    from .device import PINNED_KERNELS, THREADS_ENV
    values = demo_values(metrics)
    if not values or not Path(reference).exists():
        return []
    runs = read_json(reference)["runs"]
    env = _settings(state)
    lines = ["", "Against the recorded demo runs (" + str(Path(reference).name) + ", docs/reproducibility.md):"]
    if env is None:
        lines.append("- this run's notebooks ran with different thread counts or kernel pins (an interrupted "
                     "demo resumed under other settings): its numbers cannot be compared bit for bit")
        mine = None
    else:
        # the kernels' thread count as the demo passed it, else as the training stages recorded it
        threads = env.get(THREADS_ENV) or env.get("OMP_NUM_THREADS") or _trained_threads(run)
        pinned = all(env.get(k) == v for k, v in PINNED_KERNELS.items())
        mine = {"cpu": cpu_model(), "threads": int(threads) if threads else None, "pinned": pinned}
        lines.append(f"- this run: {mine['cpu']}, {mine['threads'] or '?'} thread(s), kernels "
                     f"{'pinned to AVX2' if pinned else 'not pinned'}")
    # a run recorded before a change of the kit's arithmetic (``"bits_current": false``) counts in the
    # band but is not expected to the digit: the same settings give other bits on today's code
    same = [r for r in runs if mine is not None and r.get("bits_current", True)
            and all(r.get(k) == mine[k] for k in ("cpu", "threads", "pinned"))]
    for r in same:
        digits = {k: HEADLINE[k][2] for k in r["values"] if k in values}
        moved = [k for k, d in digits.items() if round(values[k], d) != round(r["values"][k], d)]
        if not moved:
            lines.append(f"- reproduces {r['name']} to the printed digit ({len(digits)} numbers): same CPU model, "
                         "thread count and kernel pins")
        else:
            lines.append(f"- differs from {r['name']} although the settings match ({', '.join(moved)}): a change "
                         "of the code, of torch or of the CPU's firmware; please report it")
    if mine is not None and not same:
        readme = next((r for r in runs if r.get("readme")), None)
        if readme is not None:
            why = [f"{what}: {readme[k]} there, {mine[k]} here" for k, what in
                   (("cpu", "CPU"), ("threads", "threads"), ("pinned", "kernels pinned")) if readme.get(k) != mine[k]]
            if not readme.get("bits_current", True):
                why.append("recorded before a change of the kit's arithmetic")
            lines.append(f"- no recorded run of this code has these settings, so the README's numbers ({readme['name']}) are "
                         f"not expected to the bit ({'; '.join(why)}): float sums round in another order, and "
                         "1,500 GAN steps carry the last bits into the metrics")
    lines.append(_band(values, runs))
    return lines


def _band(values: dict[str, float], runs: list[dict]) -> str:
    rows, outside = [], []
    for key, (title, _, digits) in HEADLINE.items():
        seen = [r["values"][key] for r in runs if key in r.get("values", {})]
        if key not in values or len(seen) < 2:
            continue
        low, high = min(seen), max(seen)
        inside = round(low, digits) <= round(values[key], digits) <= round(high, digits)
        rows.append((title, f"{values[key]:.{digits}f}", f"{low:.{digits}f} - {high:.{digits}f}", len(seen),
                     "yes" if inside else "NO"))
        if not inside:
            outside.append(title)
    if not rows:
        return ""
    table = format_table(rows, ("number", "this run", "band of the recorded runs", "runs", "inside"))
    verdict = ("every number lies in the band: the run behaves like the recorded ones" if not outside else
               f"{len(outside)} number(s) outside the band ({', '.join(outside)}); the band spans a handful of "
               "runs over CPUs, thread counts and kernel pins, not every machine, so a small step outside is "
               "not an error by itself; a large one is worth a look")
    return table + "\n" + verdict
