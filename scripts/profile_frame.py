"""Where the time of one editing frame goes (docs/speed.md, "the profile before and after"): the
paper-width DMN's ``render`` (random weights, style cached, batch 1) under ``torch.profiler``.

    python scripts/profile_frame.py {autocast,after} SIZE THREADS

``autocast``: plain ``torch.autocast("cpu", dtype=torch.bfloat16)`` around ``render`` (what issue 23
measured before the bf16 path); ``after``: ``maskgan.precision.InferenceNet(dmn, "bf16")``, what the
Editor renders with. Times 3 frames, then profiles one and prints the top ops by self CPU time.
"""
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from maskgan.config import Config
from maskgan.labels import one_hot
from maskgan.nn import build_dmn

mode, size, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
dmn = build_dmn(Config.preset("paper")).eval().requires_grad_(False)
mask = one_hot(torch.randint(0, 19, (1, size, size)))
with torch.no_grad():
    style = dmn.style(torch.rand(1, 3, size, size) * 2 - 1, mask)
if mode == "after":
    from maskgan.precision import InferenceNet
    net = InferenceNet(dmn, "bf16")

    def frame():
        return net.render(mask, style)
elif mode == "autocast":
    def frame():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return dmn.render(mask, style)
else:
    sys.exit(f"mode must be 'autocast' or 'after', got {mode!r}")
with torch.no_grad():
    frame()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        frame()
        times.append(time.perf_counter() - t)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        frame()
print(f"{mode}, {size} px, {threads} thread(s): median frame {statistics.median(times) * 1000:.0f} ms")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))
