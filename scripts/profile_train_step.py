"""Where the time of one training step goes, fp32 against bf16 (docs/speed.md, "Why the stage-I step
is 1.6x and not 1.8x"): a stage's ``train_step`` at the ``cpu`` preset under ``torch.profiler``.

    python scripts/profile_train_step.py STAGE THREADS     # STAGE: vae, dmn or ebst

For ``train.amp`` none and bf16 in turn: times 5 steps after 2 warm-ups (median), then profiles one
and prints the top ops by self CPU time, grouped as the doc's table groups them.
"""
import statistics
import sys
import tempfile
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from maskgan.config import Config
from maskgan.data import build_dataset
from maskgan.train import prepared_trainer, train

GROUPS = {  # op name -> the row it is counted in
    "convolution forward": ("aten::mkldnn_convolution", "aten::_convolution"),
    "convolution backward": ("aten::convolution_backward", "aten::mkldnn_convolution_backward"),
    "dtype copies": ("aten::copy_", "aten::_to_copy"),
    "norms (forward and backward)": ("aten::native_group_norm", "aten::native_group_norm_backward",
                                     "aten::native_batch_norm", "aten::native_batch_norm_backward"),
}


def main(stage: str, threads: int) -> None:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config.preset("cpu").with_overrides({"device": "cpu", "cadence.sample_every": 10**6})
        if stage == "ebst":
            train("vae", cfg, tmp, steps=1, progress=False)
        dataset = build_dataset(cfg.data, "train", train=True)
        for amp in ("none", "bf16"):
            trainer, batch = prepared_trainer(stage, cfg.with_overrides({"train.amp": amp}), tmp, dataset=dataset)
            for _ in range(2):
                trainer.train_step(batch)
            times = []
            for _ in range(5):
                t = time.perf_counter()
                trainer.train_step(batch)
                times.append(time.perf_counter() - t)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                trainer.train_step(batch)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            grouped = defaultdict(float)
            for e in events:
                row = next((g for g, names in GROUPS.items() if e.key in names), "everything else")
                grouped[row] += e.self_cpu_time_total
            print(f"\n{stage}, train.amp={amp}, {threads} thread(s): median step {statistics.median(times) * 1000:.1f} ms; "
                  f"profiled step {total / 1000:.1f} ms of self CPU time")
            for row in (*GROUPS, "everything else"):
                print(f"  {row:30s} {grouped[row] / 1000:8.1f} ms  {100 * grouped[row] / total:5.1f} %")
            print(events.table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("vae", "dmn", "ebst"):
        raise SystemExit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
