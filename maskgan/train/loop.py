"""Training-loop mechanics shared by every stage (MaskVAE, DMN stage I, EBST, parser, baseline).

A stage subclasses :class:`Trainer` and supplies its networks and optimizers (:meth:`Trainer.build`),
one :meth:`Trainer.train_step` and its sample grid (:meth:`Trainer.samples`); its name, step budget,
batch size and saved networks come from its declaration in :mod:`maskgan.stages`. This module
owns everything else, so the algorithms stay short and readable. :meth:`Trainer.fit` runs in
named phases:

1. **plan**: find the newest intact checkpoint, check that it belongs to this configuration
   (the stage's identity keys), and fix the LR schedule's total (the configured steps, the stored
   total of a resumed run, or a new total for ``extend_to``);
2. **build**: networks, optimizers with that schedule, device, ``channels_last``, DDP, compile;
3. **restore**: weights, optimizer / scheduler / scaler states, RNG states and the log;
4. **loop**: a resumable data order (a seeded permutation per epoch, or ``DistributedSampler``
   under DDP; per-sample flips drawn from ``(seed, epoch, index)``, so any number of DataLoader
   workers gives the same batches), autocast around forward + loss only, a NaN/Inf guard, logs,
   sample grids, atomic checkpoints;
5. **finish**: the summary.

The stage folder is locked for the whole of :meth:`Trainer.fit` (:class:`maskgan.checkpoint.StageLock`).
"""
from __future__ import annotations

import functools
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import Checkpoint, clean_leftovers, save_checkpoint, set_rng_state
from ..config import Config, migrate
from ..data import class_weights
from ..device import kernel_settings, resolve_device
from ..errors import CheckpointError, MaskGANError, TrainingError, storage_error
from ..io import atomic_write_json, atomic_write_text
from ..precision import amp_dtype
from ..run import Run, read_jsonl
from ..stages import get_stage, identity

__all__ = ["Trainer", "DataOrder", "linear_decay", "SampleKey", "collate", "WEIGHT_LIMIT"]

#: A weight larger than this in magnitude has exploded (the kit's trained networks stay far below 100;
#: float32 overflows once two such values meet in a product of a few thousand terms). The guard of
#: :meth:`Trainer._check_weights` refuses to save or finish with one.
WEIGHT_LIMIT = 1e6


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

    def epoch_of(self, step: int) -> int:
        return step // self.batches_per_epoch

    def batch(self, step: int) -> list[int]:
        epoch, k = divmod(step, self.batches_per_epoch)
        if self._cached[0] != epoch:
            self._cached = (epoch, self.epoch_indices(epoch))
        idx = self._cached[1]
        return idx[k * self.batch_size:(k + 1) * self.batch_size]


@dataclass(frozen=True)
class SampleKey:
    """What the data loader fetches: sample ``index`` as drawn in ``epoch``, or (``ref``) its label
    map alone, e.g. EBST's reference mask ``M^ref``."""
    index: int
    epoch: int
    ref: bool = False


class _Keyed(torch.utils.data.Dataset):
    """A dataset read through :class:`SampleKey`: ``sample(index, epoch=, seed=)`` when the dataset
    has it (the kit's datasets: flips from ``(seed, epoch, index)``), else ``dataset[index]``."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey):
        if key.ref:
            label = self.dataset.label(key.index) if hasattr(self.dataset, "label") else self.dataset[key.index]["label"]
            return {"ref_label": label}
        if hasattr(self.dataset, "sample"):
            return self.dataset.sample(key.index, epoch=key.epoch, seed=self.seed)
        return self.dataset[key.index]


class _StepBatches:
    """Batch sampler yielding the sample keys of steps ``start .. total - 1`` (see :meth:`Trainer.batch_keys`)."""

    def __init__(self, trainer: "Trainer", start: int, total: int):
        self.trainer, self.start, self.total = trainer, start, total

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.trainer.batch_keys(step)

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def collate(samples: list[dict]) -> dict:
    """One batch: ``image`` (N,3,H,W), ``label`` (N,H,W), ``name``, and ``ref_label`` when the keys
    asked for reference masks."""
    faces = [s for s in samples if "image" in s]
    batch = {"image": torch.stack([s["image"] for s in faces]), "label": torch.stack([s["label"] for s in faces]),
             "name": [s["name"] for s in faces]}
    refs = [s["ref_label"] for s in samples if "ref_label" in s]
    if refs:
        batch["ref_label"] = torch.stack(refs)
    return batch


class Trainer:
    """Base class of the training stages. Subclasses set ``stage`` (a name in :mod:`maskgan.stages`)
    and define :meth:`build` (``self.nets`` and optimizers through :meth:`make_optimizer`),
    :meth:`train_step` and :meth:`samples`."""

    stage: str = "base"
    n_samples: int = 6  # faces in the sample grids

    def __init__(self, cfg, run_dir: Path | str, *, device: str | None = None, resume: bool = False,
                 progress: bool = True, extend_to: int | None = None):
        self.spec = get_stage(self.stage)
        self.cfg = cfg
        self.tc = cfg.train
        self.run = Run(run_dir, cfg=cfg)
        self.run_dir = self.run.path
        self.stage_dir = self.run.stage_dir(self.stage)
        self.resume = resume
        self.progress = progress
        self.extend_to = extend_to
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.device = resolve_device(device or cfg.device)
        self.is_main = self.rank == 0
        self.nets: dict[str, nn.Module] = {}        # every network the stage uses
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.step = 0
        self.dataset = None  # the training set, set by fit() before build() (class weights, EBST's M^ref)
        self.schedule = {"total": self.total_steps(), "extensions": []}  # the LR schedule (plan phase)
        self._tb = None

    # ---- to be provided by the stages -------------------------------------------------------
    def build(self) -> None:
        raise NotImplementedError

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def samples(self, batch: dict):
        """``(rows, column titles)`` for :func:`maskgan.viz.image_grid` showing the current outputs."""
        raise NotImplementedError

    # ---- what the registry says -------------------------------------------------------------
    @property
    def saved(self) -> tuple[str, ...]:
        """Names of the nets written to checkpoints (the stage declaration's ``nets``)."""
        return self.spec.nets

    def total_steps(self) -> int:
        """The configured number of steps (the stage declaration's budget)."""
        return self.spec.steps(self.cfg)

    @property
    def batch_size(self) -> int:
        return self.spec.batch_size(self.cfg)

    # ---- mechanics -------------------------------------------------------------------------
    @functools.cached_property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype of ``train.amp`` on this device (:func:`maskgan.precision.amp_dtype`:
        bf16 on CUDA and on CPUs with bfloat16 units, fp16 on CUDA; else None, said in one line)."""
        return amp_dtype(self.tc.amp, self.device)

    @property
    def channels_last(self) -> bool:
        """``train.channels_last``, and always with bf16 autocast on a CPU (its oneDNN kernels are
        faster on channels-last; measured in ``docs/speed.md``)."""
        return self.tc.channels_last or (self.device.type == "cpu" and self.amp_dtype == torch.bfloat16)

    def autocast(self):
        """Autocast around forward + loss only (never around the optimizer step)."""
        dtype = self.amp_dtype
        return torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext()

    def make_optimizer(self, name: str, params, lr: float) -> torch.optim.Optimizer:
        """Adam with the configured betas, the run's LR schedule and (fp16 only) its own GradScaler."""
        opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=tuple(self.tc.betas))
        self.optimizers[name] = opt
        self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
            opt, linear_decay(self.schedule["total"], self.tc.lr_decay_fraction))
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
        out = dict(batch)
        out["image"] = batch["image"].to(self.device, non_blocking=True)
        if self.channels_last:
            out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
        for key in ("label", "ref_label"):
            if key in batch:
                out[key] = batch[key].to(self.device, non_blocking=True)
        return out

    def batch_keys(self, step: int) -> list[SampleKey]:
        """The samples of training step ``step`` (EBST adds reference masks)."""
        epoch = self.order.epoch_of(step)
        return [SampleKey(i, epoch) for i in self.order.batch(step)]

    def class_weights(self, balance: float) -> torch.Tensor | None:
        """Cross-entropy class weights ``freq ** -balance`` estimated from the first masks of the
        training set (:func:`maskgan.data.class_weights`), on the device; ``None`` when
        ``balance`` is 0. Recomputed identically on resume, so not checkpointed. Call from build()."""
        if not balance:
            return None
        if self.dataset is None:
            raise RuntimeError(f"{type(self).__name__}.build estimates class frequencies from the training set: "
                               f"call fit(dataset) (or set trainer.dataset before build())")
        return class_weights(self.dataset, balance).to(self.device)

    def prepare_nets(self) -> None:
        """Device, memory format, DDP wrappers (for nets with trainable weights) and torch.compile."""
        for name, net in list(self.nets.items()):
            net.to(self.device)
            if self.channels_last:
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

    # ---- phase 1: plan ---------------------------------------------------------------------
    def _record(self) -> dict:
        return {"stage": self.stage, "config": self.cfg.to_dict(), "schedule": self.schedule}

    def _check_identity(self, ckpt: Checkpoint) -> None:
        saved = _fill_missing(migrate(ckpt.record().get("config", {})), self.cfg.to_dict())
        theirs, mine = identity(self.spec, saved), identity(self.spec, self.cfg)
        if theirs != mine:
            diff = [f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here" for k in sorted(set(mine) | set(theirs))
                    if mine.get(k) != theirs.get(k)][:6]
            raise TrainingError(
                f"{self.stage_dir} holds a checkpoint ({ckpt.path.name}) of another configuration "
                f"({'; '.join(diff)}). Choose another --run-dir, or delete {self.stage_dir} to start over.")

    def _stored_schedule(self, ckpt: Checkpoint) -> dict:
        record = ckpt.record()
        if "schedule" in record:
            return record["schedule"]
        old = Config.from_dict(_fill_missing(migrate(record["config"]), self.cfg.to_dict()))
        return {"total": self.spec.steps(old), "extensions": []}  # written before schedules were recorded

    def plan(self) -> Checkpoint | None:
        """The checkpoint to resume from (or None), after the identity check; sets ``self.schedule``."""
        ckpt = self.run.latest(self.spec)
        configured = self.total_steps()
        if ckpt is None:
            if self.extend_to is not None:
                self.schedule = {"total": int(self.extend_to), "extensions": []}
            return None
        if not self.resume:
            raise TrainingError(f"{self.stage_dir} already holds a checkpoint at step {ckpt.step}; pass --resume "
                                "(resume=True) to continue it, or choose another --run-dir")
        self._check_identity(ckpt)
        stored = self._stored_schedule(ckpt)
        if self.extend_to is not None:
            if self.extend_to < ckpt.step:
                raise TrainingError(f"--extend-to {self.extend_to} is below the step this run is at ({ckpt.step}); "
                                    f"ask for more than {ckpt.step} steps")
            self.schedule = dict(stored)
            if self.extend_to != stored["total"]:
                self.schedule = {"total": int(self.extend_to), "extensions": [
                    *stored.get("extensions", []), {"at_step": ckpt.step, "from": stored["total"],
                                                    "to": int(self.extend_to)}]}
            return ckpt
        self.schedule = dict(stored)
        if configured != stored["total"] and ckpt.step < configured:
            raise TrainingError(
                f"{self.stage} in {self.run_dir} was scheduled for {stored['total']} steps (its learning rate "
                f"decays to 0 at step {stored['total']}), but this config asks for {configured}. To train a run "
                f"longer with a new schedule, pass --extend-to {configured} (extend_to={configured}); otherwise "
                f"keep the stage's step count at {stored['total']}.")
        return ckpt

    # ---- phase 3: restore ------------------------------------------------------------------
    def restore(self, ckpt: Checkpoint) -> int:
        """Weights, optimizer / scheduler / scaler states and RNG states of ``ckpt``; returns its step."""
        for name in self.saved:
            ckpt.load(name, self.nets[name])
        state = ckpt.state()
        for key, table in (("optimizers", self.optimizers), ("schedulers", self.schedulers), ("scalers", self.scalers)):
            for name, obj in table.items():
                if name not in state.get(key, {}):
                    raise CheckpointError(f"{ckpt.file('state.pt')} has no {key[:-1]} {name!r}")
                obj.load_state_dict(state[key][name])
        # the learning rate of the schedule in force (a new one after --extend-to)
        for sched in self.schedulers.values():
            for group, base, factor in zip(sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
                group["lr"] = base * factor(sched.last_epoch)
        set_rng_state(state["rng"])
        return int(state["step"])

    def _trim_log(self, upto: int) -> None:
        """On resume, drop log lines of steps the resumed run will redo (written after the checkpoint)."""
        path = self.run.log_file(self.stage)
        if self.is_main and path.exists():
            lines = [json.dumps(r) for r in read_jsonl(path) if r.get("step", 0) <= upto]
            atomic_write_text(path, "".join(ln + "\n" for ln in lines))

    # ---- phase 4: the loop's outputs -------------------------------------------------------
    def save(self) -> Path | None:
        if not self.is_main:
            return None
        state = {"optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
                 "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
                 "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
                 "schedule": self.schedule}
        nets = {name: self.nets[name] for name in self.saved}
        return save_checkpoint(self.stage_dir, self.step, nets, state, self._record(),
                               keep=self.cfg.cadence.keep_checkpoints)

    def _log(self, record: dict) -> None:
        if not self.is_main:
            return
        with open(self.run.log_file(self.stage), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(f"{self.stage}/{k}", v, record["step"])

    def save_samples(self, batch: dict) -> Path | None:
        if not self.is_main:
            return None
        from ..viz import image_grid, save_figure
        rows, titles = self.samples(batch)
        # pyplot=False: drawn without pyplot or a backend switch, so a notebook that trains keeps its figures
        fig = image_grid(rows, col_titles=titles, title=f"{self.stage} step {self.step}", pyplot=False)
        return save_figure(fig, self.stage_dir / "samples" / f"step_{self.step:07d}.png")

    @staticmethod
    def _where(last_ckpt) -> str:
        return (f"the last checkpoint {last_ckpt} is intact, its weights checked when it was written"
                if last_ckpt else "no checkpoint was written yet")

    def _check_values(self, values: dict[str, float], last_ckpt) -> None:
        """The NaN/Inf guard on the step's losses: stop with the term and the step, the last checkpoint untouched."""
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(f"{self.stage}: loss term {bad[0]} is {values[bad[0]]} at step {self.step}; training "
                                f"stopped ({self._where(last_ckpt)}). Lower the learning rate or check the data.")

    @torch.no_grad()
    def _bad_weights(self) -> tuple[str, str] | None:
        """``(net, what is wrong)`` when a saved network's weights are unusable, else None: a parameter or
        buffer that is not finite, or a parameter larger than :data:`WEIGHT_LIMIT` in magnitude (exploded)."""
        for name in self.saved:
            net = self.raw(name)
            tensors = [t for t in (*net.parameters(), *net.buffers()) if t.is_floating_point() and t.numel()]
            if not tensors:
                continue
            finite = bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
            params = [p for p in net.parameters() if p.numel()]
            peak = float(torch.stack([p.abs().max() for p in params]).max()) if params else 0.0
            if not finite:
                return name, "not finite (NaN or Inf)"
            if peak > WEIGHT_LIMIT:
                return name, f"exploded (largest |w| = {peak:.3g} > {WEIGHT_LIMIT:g})"
        return None

    def _check_weights(self, last_ckpt) -> None:
        """The guard on the weights themselves, before a checkpoint is written (and so before a run is
        called finished): a step's losses are computed before its update, so a last update that blows
        the weights up passes the loss guard (:meth:`_check_values`)."""
        bad = self._bad_weights()
        if bad:
            raise TrainingError(f"{self.stage}: after step {self.step} the weights of {bad[0]} are {bad[1]}; training "
                                f"stopped and nothing was saved with them ({self._where(last_ckpt)}). Lower the "
                                "learning rate (train.lr) or check the data.")

    def _check_restored(self, ckpt: Checkpoint) -> None:
        bad = self._bad_weights()
        if bad:
            raise TrainingError(f"{self.stage}: {ckpt.path} holds weights of {bad[0]} that are {bad[1]} (written by "
                                f"an older kit without this check), so it cannot be resumed. Delete {ckpt.path} to "
                                f"resume from an older checkpoint, or {self.stage_dir} to start over, with a lower "
                                "learning rate.")

    # ---- fit ---------------------------------------------------------------------------------
    def fit(self, dataset, steps: int | None = None) -> dict:
        """Train until step ``steps`` (default: the end of the schedule) and return a summary."""
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise TrainingError(f"steps must be a positive number of steps, got {steps!r}")
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        try:
            self.stage_dir.mkdir(parents=True, exist_ok=True)
            lock = self.run.lock(self.stage) if self.is_main else nullcontext()
            with lock:
                if self.is_main:
                    clean_leftovers(self.stage_dir)
                return self._fit(dataset, steps)
        except OSError as e:  # a full disk, a read-only run directory ...: the kit's error, naming the folder
            if isinstance(e, MaskGANError):
                raise
            raise storage_error(e, self.stage_dir) from e

    def _fit(self, dataset, steps: int | None) -> dict:
        torch.manual_seed(self.cfg.seed)
        self.dataset = dataset
        ckpt = self.plan()                                                   # 1. plan
        total = self.schedule["total"]
        stop = total if steps is None else steps
        if stop > total:
            raise TrainingError(
                f"{self.stage}: {stop} steps were asked for, but its learning-rate schedule ends at step {total} "
                f"(every step after that would train at LR 0). To train longer with a new schedule, use "
                f"--extend-to {stop} (extend_to={stop}).")
        self.build()                                                         # 2. build
        self.prepare_nets()
        # the batch shown in sample grids: fixed, and read before the RNG state is restored
        fixed = self.to_device(collate([dataset[i] for i in range(min(len(dataset), self.n_samples))]))
        if ckpt is not None:                                                 # 3. restore
            self.step = self.restore(ckpt)
            self._check_restored(ckpt)
        self._trim_log(self.step)  # lines of steps this run redoes (all of them after a kill before any checkpoint)
        if self.is_main and self.cfg.cadence.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.stage_dir / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: logging to log.jsonl only")
        if self.is_main:
            atomic_write_json(self.stage_dir / "config.json", self._record())
        start_time, start_step = time.perf_counter(), self.step
        last_ckpt = self._loop(dataset, stop, ckpt.path if ckpt else None, fixed)  # 4. loop
        return self._finish(start_time, start_step, last_ckpt)              # 5. finish

    def _loop(self, dataset, stop: int, last_ckpt, fixed: dict):
        self.order = DataOrder(len(dataset), self.batch_size, self.cfg.seed, self.rank, self.world)
        cadence = self.cfg.cadence
        bar = None
        if self.progress and self.is_main:
            from tqdm.auto import tqdm
            bar = tqdm(total=stop, initial=min(self.step, stop), desc=self.stage, unit="step")
        for net in self.nets.values():
            net.train()
        loader = torch.utils.data.DataLoader(
            _Keyed(dataset, self.cfg.seed), batch_sampler=_StepBatches(self, self.step, stop), collate_fn=collate,
            num_workers=self.cfg.data.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator())  # its own generator: creating it must not consume the global RNG
        try:
            for batch in loader:
                terms = self.train_step(self.to_device(batch))
                # one device sync per step for all terms (the NaN guard needs the values anyway)
                values = dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist()))
                self._check_values(values, last_ckpt)
                for sched in self.schedulers.values():
                    sched.step()
                self.step += 1
                if bar is not None:
                    bar.update(1)
                    shown = [(k, v) for k, v in values.items() if v][:4]  # terms switched off by their weight are 0
                    bar.set_postfix({k: f"{v:.3g}" for k, v in shown})
                if self.step % cadence.log_every == 0 or self.step == stop:
                    self._log({"step": self.step, **values,
                               "lr": self.optimizers[next(iter(self.optimizers))].param_groups[0]["lr"]})
                saving = self.step % cadence.checkpoint_every == 0 or self.step == stop
                if saving:
                    self._check_weights(last_ckpt)  # before a checkpoint is written and before "finished"
                if self.step % cadence.sample_every == 0 or self.step == stop:
                    self.save_samples(fixed)
                if saving:
                    last_ckpt = self.save() or last_ckpt
        finally:
            if bar is not None:
                bar.close()
            if self._tb is not None:
                self._tb.close()
        return last_ckpt

    def _finish(self, start_time: float, start_step: int, last_ckpt) -> dict:
        elapsed = time.perf_counter() - start_time
        done = self.step - start_step
        summary = {"stage": self.stage, "steps": self.step, "schedule_total": self.schedule["total"],
                   "seconds": round(elapsed, 3),
                   "seconds_per_step": round(elapsed / done, 4) if done else None,
                   "images_per_second": round(done * self.batch_size * self.world / elapsed, 2) if done else None,
                   "world_size": self.world, "threads": torch.get_num_threads(), "weights_digest": self._rank_digests(),
                   "kernels": kernel_settings(),  # threads, CPU capability, pins: what the float sums depended on
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


def _fill_missing(saved: dict, current: dict) -> dict:
    """``saved`` with the keys it lacks taken from ``current`` (recursively): keys the kit gained
    after a run was saved cannot have differed, so they take today's values."""
    out = dict(saved)
    for key, value in current.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _fill_missing(out[key], value)
    return out

