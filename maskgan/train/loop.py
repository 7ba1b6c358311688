"""Training-loop mechanics shared by the three stages (MaskVAE, DMN stage I, EBST).

A stage subclasses :class:`Trainer` and supplies its networks, optimizers and one ``train_step``;
this module owns everything else, so the algorithms stay short and readable:

- device choice (``auto`` -> cuda, mps, cpu), seeding, ``channels_last``, optional ``torch.compile``;
- mixed precision: autocast around forward + loss only, bf16 on CUDA by default, or fp16 with one
  ``GradScaler`` per optimizer;
- a resumable data order (a seeded permutation per epoch, or ``DistributedSampler`` under DDP, and
  the position inside the epoch saved in the checkpoint);
- a NaN/Inf guard that stops with the term and the step, leaving the last checkpoint intact;
- logs (JSONL of every loss term, optional TensorBoard), sample grids, atomic checkpoints, resume;
- DDP when launched by ``torchrun`` (rank-0-only logging and checkpoints).
"""
from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from ..errors import TrainingError
from ..io import atomic_write_json, atomic_write_text
from ..summary import flatten_metrics
from .checkpoint import CheckpointError, latest_checkpoint, load_state, load_weights, save_checkpoint, set_rng_state

__all__ = ["Trainer", "TrainingError", "resolve_device", "DataOrder", "linear_decay"]




def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to ``torch.device``."""
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} was asked for, but CUDA is not available on this machine; "
                            "use --device cpu (or auto)")
    return dev


def linear_decay(total_steps: int, decay_fraction: float):
    """LR multiplier: constant for the first ``1 - decay_fraction`` of the steps, then linear to 0
    (the demo's 100 epochs constant + 100 epochs decay is ``decay_fraction=0.5``)."""
    start = int(total_steps * (1.0 - decay_fraction))

    def factor(step: int) -> float:
        if step < start or total_steps <= start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / float(total_steps - start))
    return factor


class DataOrder:
    """Which sample indices form batch ``k`` of epoch ``e``: deterministic from the seed, so a resumed
    run sees exactly the batches the uninterrupted run would have seen."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if n < batch_size * world:
            raise TrainingError(f"the dataset has {n} samples, fewer than one batch of {batch_size} x {world} "
                                "process(es); add data or lower the batch size")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.batches_per_epoch = n // (batch_size * world)
        self._cached: tuple[int, list[int]] = (-1, [])

    def epoch_indices(self, epoch: int) -> list[int]:
        if self.world > 1:
            from torch.utils.data.distributed import DistributedSampler
            sampler = DistributedSampler(range(self.n), num_replicas=self.world, rank=self.rank,
                                         shuffle=True, seed=self.seed, drop_last=True)
            sampler.set_epoch(epoch)
            return list(sampler)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def batch(self, step: int) -> list[int]:
        epoch, k = divmod(step, self.batches_per_epoch)
        if self._cached[0] != epoch:
            self._cached = (epoch, self.epoch_indices(epoch))
        idx = self._cached[1]
        return idx[k * self.batch_size:(k + 1) * self.batch_size]


def _fill_missing(saved: dict, current: dict) -> dict:
    """``saved`` with the keys it lacks taken from ``current`` (recursively)."""
    out = dict(saved)
    for key, value in current.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _fill_missing(out[key], value)
    return out


class _StepBatches:
    """Batch sampler yielding the batches of steps ``start .. total - 1`` of a :class:`DataOrder`."""

    def __init__(self, order: DataOrder, start: int, total: int):
        self.order, self.start, self.total = order, start, total

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.order.batch(step)

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def _collate(samples: list[dict]) -> dict:
    return {"image": torch.stack([s["image"] for s in samples]),
            "label": torch.stack([s["label"] for s in samples]),
            "name": [s["name"] for s in samples]}


class Trainer:
    """Base class of the three training stages. Subclasses define :meth:`build` (set ``self.nets``,
    ``self.optimizers`` and which nets are saved), :meth:`train_step` and :meth:`samples`."""

    stage: str = "base"
    n_samples: int = 6  # faces in the sample grids

    def __init__(self, cfg, run_dir: Path | str, *, device: str | None = None, resume: bool = False,
                 progress: bool = True):
        self.cfg = cfg
        self.tc = cfg.train
        self.run_dir = Path(run_dir)
        self.stage_dir = self.run_dir / self.stage
        self.resume = resume
        self.progress = progress
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.device = resolve_device(device or cfg.device)
        self.is_main = self.rank == 0
        self.nets: dict[str, nn.Module] = {}        # every network the stage uses
        self.saved: list[str] = []                  # names of the nets written to checkpoints
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.step = 0
        self.dataset = None  # the training set, set by fit() before build() (class weights, EBST's M^ref)

    # ---- to be provided by the stages -------------------------------------------------------
    def total_steps(self) -> int:
        raise NotImplementedError

    def build(self) -> None:
        raise NotImplementedError

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def samples(self, batch: dict):
        """A list of rows for :func:`maskgan.viz.image_grid` showing the stage's current outputs."""
        raise NotImplementedError

    # ---- mechanics -------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.tc.batch_size

    @property
    def amp_dtype(self) -> torch.dtype | None:
        amp = self.tc.amp
        if amp == "none" or self.device.type != "cuda":
            return None
        return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]

    def autocast(self):
        """Autocast around forward + loss only (never around the optimizer step)."""
        dtype = self.amp_dtype
        return torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()

    def make_optimizer(self, name: str, params, lr: float) -> torch.optim.Optimizer:
        """Adam with the configured betas, its LR schedule and (fp16 only) its own GradScaler."""
        opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=tuple(self.tc.betas))
        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
            opt, linear_decay(self.total_steps(), self.tc.lr_decay_fraction))
        self.scalers[name] = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        return opt

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad, backward (scaled for fp16), step, scaler update, for one optimizer."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def raw(self, name: str) -> nn.Module:
        """A network without its DDP / compile wrapper (for calls that must not sync gradients)."""
        net = self.nets[name]
        net = getattr(net, "module", net)
        return getattr(net, "_orig_mod", net)

    def to_device(self, batch: dict) -> dict:
        image = batch["image"].to(self.device, non_blocking=True)
        if self.tc.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return {"image": image, "label": batch["label"].to(self.device, non_blocking=True), "name": batch["name"]}

    def _prepare_nets(self) -> None:
        for name, net in list(self.nets.items()):
            net.to(self.device)
            if self.tc.channels_last:
                net.to(memory_format=torch.channels_last)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            for name, net in list(self.nets.items()):
                if any(p.requires_grad for p in net.parameters()):
                    ids = [self.device.index] if self.device.type == "cuda" else None
                    self.nets[name] = DDP(net, device_ids=ids)
        if self.tc.compile:
            for name, net in list(self.nets.items()):
                self.nets[name] = torch.compile(net)

    def _config_dict(self) -> dict:
        return {"stage": self.stage, "config": self.cfg.to_dict()}

    def _check_run_dir(self) -> Path | None:
        """The checkpoint to resume from, after checking it belongs to this configuration."""
        ckpt = latest_checkpoint(self.stage_dir)
        if ckpt is None:
            return None
        saved = json.loads((ckpt / "config.json").read_text())
        # keys the kit gained after the run was saved cannot have differed: they take today's values
        theirs_cfg = _fill_missing(saved.get("config", {}), self.cfg.to_dict())
        if theirs_cfg != self.cfg.to_dict():
            mine = dict(flatten_metrics(self.cfg.to_dict()))
            theirs = dict(flatten_metrics(theirs_cfg))
            diff = [f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in sorted(set(mine) | set(theirs))
                    if mine.get(k) != theirs.get(k)][:6]
            raise TrainingError(
                f"{self.stage_dir} holds a checkpoint ({ckpt.name}) of another configuration "
                f"({'; '.join(diff)}). Choose another --run-dir, or delete {self.stage_dir} to start over.")
        if not self.resume:
            raise TrainingError(
                f"{self.stage_dir} already holds a checkpoint at step {int(ckpt.name.split('_')[1])}; "
                "pass --resume (resume=True) to continue it, or choose another --run-dir")
        return ckpt

    def _load(self, ckpt: Path) -> int:
        for name in self.saved:
            load_weights(self.nets[name], ckpt / f"{name}.safetensors")
        state = load_state(ckpt / "state.pt")
        for key, table in (("optimizers", self.optimizers), ("schedulers", self.schedulers), ("scalers", self.scalers)):
            for name, obj in table.items():
                if name not in state[key]:
                    raise CheckpointError(f"{ckpt / 'state.pt'} has no {key[:-1]} {name!r}")
                obj.load_state_dict(state[key][name])
        set_rng_state(state["rng"])
        return int(state["step"])

    def save(self) -> Path | None:
        if not self.is_main:
            return None
        state = {"optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
                 "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
                 "scalers": {k: v.state_dict() for k, v in self.scalers.items()}}
        nets = {name: self.nets[name] for name in self.saved}
        return save_checkpoint(self.stage_dir, self.step, nets, state, self._config_dict(), keep=self.tc.keep_checkpoints)

    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        with open(self.stage_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(f"{self.stage}/{k}", v, record["step"])

    def _trim_log(self, upto: int) -> None:
        """On resume, drop log lines of steps the resumed run will redo (written after the checkpoint)."""
        path = self.stage_dir / "log.jsonl"
        if self.is_main and path.exists():
            lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= upto]
            atomic_write_text(path, "".join(ln + "\n" for ln in lines))

    def save_samples(self, batch: dict) -> Path | None:
        if not self.is_main:
            return None
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from ..viz import image_grid, save_figure
        rows, titles = self.samples(batch)
        fig = image_grid(rows, col_titles=titles, title=f"{self.stage} step {self.step}")
        path = save_figure(fig, self.stage_dir / "samples" / f"step_{self.step:07d}.png")
        plt.close(fig)
        return path

    def class_weights(self, balance: float) -> torch.Tensor | None:
        """Cross-entropy class weights ``freq ** -balance`` estimated from the first masks of the
        training set (:func:`maskgan.train.parser.class_weights`), on the device; ``None`` when
        ``balance`` is 0. Recomputed identically on resume, so not checkpointed. Call from build()."""
        if not balance:
            return None
        if self.dataset is None:
            raise RuntimeError(f"{type(self).__name__}.build estimates class frequencies from the training set: "
                               f"call fit(dataset) (or set trainer.dataset before build())")
        from .parser import class_weights
        return class_weights(self.dataset, balance).to(self.device)

    def fit(self, dataset, steps: int | None = None) -> dict:
        """Train for ``steps`` (default: the stage's configured total) and return a summary."""
        total = steps if steps is not None else self.total_steps()
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(self.cfg.seed)
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        self.build()
        ckpt = self._check_run_dir()
        self._prepare_nets()
        # the batch shown in sample grids: fixed, and read before the RNG state is restored
        fixed = self.to_device(_collate([dataset[i] for i in range(min(len(dataset), self.n_samples))]))
        if ckpt is not None:
            self.step = self._load(ckpt)
            self._trim_log(self.step)
        self._tb = None
        if self.is_main and self.tc.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.stage_dir / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: logging to log.jsonl only")
        order = DataOrder(len(dataset), self.batch_size, self.cfg.seed, self.rank, self.world)
        if self.is_main:
            atomic_write_json(self.stage_dir / "config.json", self._config_dict())
        bar = None
        if self.progress and self.is_main:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, initial=min(self.step, total), desc=self.stage, unit="step")
        last_ckpt = ckpt
        start_time, start_step = time.perf_counter(), self.step
        for net in self.nets.values():
            net.train()
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=_StepBatches(order, self.step, total), collate_fn=_collate,
            num_workers=self.cfg.data.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator())  # its own generator: creating it must not consume the global RNG
        for batch in loader:
            batch = self.to_device(batch)
            terms = self.train_step(batch)
            # one device sync per step for all terms (the NaN guard needs the values anyway)
            values = dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist()))
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                where = f"the last good checkpoint {last_ckpt} is intact" if last_ckpt else "no checkpoint was written yet"
                raise TrainingError(f"{self.stage}: loss term {bad[0]} is {values[bad[0]]} at step {self.step}; "
                                    f"training stopped ({where}). Lower the learning rate or check the data.")
            for sched in self.schedulers.values():
                sched.step()
            self.step += 1
            if bar is not None:
                bar.update(1)
                shown = [(k, v) for k, v in values.items() if v][:4]  # terms switched off by their weight are 0
                bar.set_postfix({k: f"{v:.3g}" for k, v in shown})
            if self.step % self.tc.log_every == 0 or self.step == total:
                self._log({"step": self.step, **values,
                           "lr": self.optimizers[next(iter(self.optimizers))].param_groups[0]["lr"]})
            if self.step % self.tc.sample_every == 0 or self.step == total:
                self.save_samples(fixed)
            if self.step % self.tc.checkpoint_every == 0 or self.step == total:
                last_ckpt = self.save() or last_ckpt
        if bar is not None:
            bar.close()
        if self._tb is not None:
            self._tb.close()
        elapsed = time.perf_counter() - start_time
        done = self.step - start_step
        summary = {"stage": self.stage, "steps": self.step, "seconds": round(elapsed, 3),
                   "seconds_per_step": round(elapsed / done, 4) if done else None,
                   "images_per_second": round(done * self.batch_size * self.world / elapsed, 2) if done else None,
                   "world_size": self.world, "weights_digest": self._rank_digests(),
                   "checkpoint": str(last_ckpt) if last_ckpt else None}
        if self.is_main and done:  # a resumed, already finished run keeps the timing of the real one
            atomic_write_json(self.stage_dir / "summary.json", summary)
        return summary

    def _rank_digests(self) -> list[float]:
        """A checksum of the saved networks' weights on every rank (gathered under DDP): after
        training they must be equal, since DDP keeps the replicas identical."""
        local = sum(float(p.detach().double().sum()) + float(p.detach().double().abs().sum())
                    for name in self.saved for p in self.raw(name).parameters())
        if self.world == 1:
            return [local]
        gathered = [None] * self.world
        torch.distributed.all_gather_object(gathered, local)
        return gathered

