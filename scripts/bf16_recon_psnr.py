"""Reconstruction PSNR (fp32 rendering, the first 100 faces of the cpu preset's test split) of two stage-I
runs trained with the same seed, one with ``train.amp=none`` and one with ``train.amp=bf16``, at every step
both kept a checkpoint of (docs/speed.md, "Training in bf16"). Usage:

    python scripts/bf16_recon_psnr.py RUNS_ROOT   # RUNS_ROOT/{none,bf16}/step_NNNNNNN (checkpoint folders)
"""
import json
import sys
from pathlib import Path

import torch

from maskgan.checkpoint import Checkpoint
from maskgan.config import Config
from maskgan.data import build_dataset
from maskgan.labels import one_hot
from maskgan.metrics import psnr
from maskgan.nn import build_dmn

torch.set_num_threads(1)
root = Path(sys.argv[1])
cfg = Config.preset("cpu")
test = build_dataset(cfg.data, "test")
items = [test[i] for i in range(min(100, len(test)))]
image = torch.stack([it["image"] for it in items])
label = torch.stack([it["label"] for it in items])
steps = sorted({p.name for p in (root / "none").iterdir()} & {p.name for p in (root / "bf16").iterdir()})
out = {}
for step in steps:
    row = {}
    for amp in ("none", "bf16"):
        net = Checkpoint(root / amp / step, int(step.split("_")[1])).load("dmn", build_dmn(cfg)).eval()
        with torch.no_grad():
            mask = one_hot(label)
            row[amp] = float(psnr(net.render(mask, net.style(image, mask)), image).mean())
    row["bf16 - fp32"] = row["bf16"] - row["none"]
    out[step] = row
    print(step, {k: round(v, 3) for k, v in row.items()}, flush=True)
print(json.dumps(out, indent=1))
