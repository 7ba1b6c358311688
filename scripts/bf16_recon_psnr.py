"""Reconstruction PSNR (fp32 rendering, the first 100 faces of the cpu preset's test split) of stage-I
runs trained with ``train.amp=none`` and ``train.amp=bf16`` (docs/speed.md, "Training in bf16").

    python scripts/bf16_recon_psnr.py RUNS_ROOT
        RUNS_ROOT/{none,bf16}/step_NNNNNNN: checkpoint folders of one pair of runs, copied aside as the
        runs wrote them; compares the pair at every step both kept.
    python scripts/bf16_recon_psnr.py --seeds RUNS_ROOT
        RUNS_ROOT/{none,bf16}_seed<S>/: run folders of `python -m maskgan train dmn --run-dir ...
        --seed S --set train.amp=...`; compares their final checkpoints seed by seed, with a paired
        t-test of bf16 - fp32 over the seeds, and the spread of the fp32 runs between seeds.
"""
import json
import re
import sys
from pathlib import Path

import torch

from maskgan.checkpoint import Checkpoint, find_checkpoint
from maskgan.config import Config
from maskgan.data import build_dataset
from maskgan.labels import one_hot
from maskgan.metrics import psnr
from maskgan.nn import build_dmn
from maskgan.stats import paired_t_test, t_test

torch.set_num_threads(1)
CFG = Config.preset("cpu")


def _test_faces(n: int = 100):
    test = build_dataset(CFG.data, "test")
    items = [test[i] for i in range(min(n, len(test)))]
    return torch.stack([it["image"] for it in items]), torch.stack([it["label"] for it in items])


def recon_psnr(ckpt: Checkpoint, image: torch.Tensor, label: torch.Tensor) -> float:
    net = ckpt.load("dmn", build_dmn(CFG)).eval()
    with torch.no_grad():
        mask = one_hot(label)
        return float(psnr(net.render(mask, net.style(image, mask)), image).mean())


def compare_steps(root: Path) -> dict:
    image, label = _test_faces()
    steps = sorted({p.name for p in (root / "none").iterdir()} & {p.name for p in (root / "bf16").iterdir()})
    out = {}
    for step in steps:
        row = {amp: recon_psnr(Checkpoint(root / amp / step, int(step.split("_")[1])), image, label)
               for amp in ("none", "bf16")}
        row["bf16 - fp32"] = row["bf16"] - row["none"]
        out[step] = row
        print(step, {k: round(v, 3) for k, v in row.items()}, flush=True)
    return out


def compare_seeds(root: Path) -> dict:
    image, label = _test_faces()
    runs = {}
    for d in sorted(root.iterdir()):
        m = re.fullmatch(r"(none|bf16)_seed(\d+)", d.name)
        if m and d.is_dir():
            ckpt = find_checkpoint(d / "dmn", report=None)
            if ckpt is None:
                raise SystemExit(f"{d / 'dmn'}: no checkpoint (did the run finish?)")
            runs.setdefault(int(m.group(2)), {})[m.group(1)] = (ckpt.step, recon_psnr(ckpt, image, label))
    seeds = sorted(s for s, r in runs.items() if set(r) == {"none", "bf16"})
    if not seeds:
        raise SystemExit(f"{root}: no seed has both a none_seed<S> and a bf16_seed<S> run")
    steps = {runs[s][a][0] for s in seeds for a in ("none", "bf16")}
    if len(steps) != 1:
        raise SystemExit(f"{root}: the runs stopped at different steps {sorted(steps)}; compare equal runs")
    fp32 = [runs[s]["none"][1] for s in seeds]
    bf16 = [runs[s]["bf16"][1] for s in seeds]
    print(f"step {steps.pop()}: reconstruction PSNR (dB) of the final checkpoints")
    print("| seed | fp32 run | bf16 run | bf16 - fp32 |\n|---|---|---|---|")
    for s, a, b in zip(seeds, fp32, bf16):
        print(f"| {s} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    diff, spread_a, spread_b = paired_t_test(bf16, fp32), t_test(fp32), t_test(bf16)
    print(f"bf16 - fp32: mean {diff['mean']:+.3f} dB, sd {diff['sd']:.3f}, t = {diff['t']:.2f}, df = {diff['df']}, "
          f"p = {diff['p']:.3f} (paired, two-sided)")
    print(f"fp32 runs: mean {spread_a['mean']:.3f}, sd {spread_a['sd']:.3f}, range {min(fp32):.2f}-{max(fp32):.2f}; "
          f"bf16 runs: mean {spread_b['mean']:.3f}, sd {spread_b['sd']:.3f}, range {min(bf16):.2f}-{max(bf16):.2f}")
    return {"seeds": seeds, "fp32": fp32, "bf16": bf16, "paired_t": diff}


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--seeds":
        print(json.dumps(compare_seeds(Path(args[1])), indent=1))
    elif len(args) == 1:
        print(json.dumps(compare_steps(Path(args[0])), indent=1))
    else:
        raise SystemExit(__doc__)
