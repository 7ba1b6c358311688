"""``evaluate_run``: every metric of MaskGAN's Sec. 4 (and the SynthFaces edit metrics) for a run.

How the numbers are made (one pass over the test data, every generator stage on every batch):

1. **Face parser** (stage ``parser``, :mod:`maskgan.train.parser`): trained on the run's training
   split if ``<run_dir>/parser`` has no finished checkpoint, then scored on the real test images.
2. **Reconstructions**: test face ``(I^t, M^t)`` -> ``G.render(M^t, G.style(I^t, M^t))``; the
   parser's pixel accuracy / mIoU of the output against ``M^t``, PSNR / SSIM against ``I^t``.
3. **Edits** (SynthFaces): for every edit family, pairs ``edit_pair(family, "test", i)`` for
   ``i < eval_edits``: the edited mask rendered in the style of the *original* face, compared
   with the ground-truth edited render (PSNR / SSIM, whole image and inside / outside the edited
   region) and parsed against the edited mask. The region is :func:`maskgan.data.synthfaces.edit_region`
   grown by :data:`REGION_DILATE` px, so that the 1-2 px anti-aliased border of a moved part
   counts as inside and "outside" holds only pixels the edit must not change.
4. **Distribution**: SWD of the reconstructions against the real test images; FID if the
   Inception weights are available. Images are kept as 8-bit (at most 256 px a side) for these.
5. **MaskVAE**: held-out reconstruction (:func:`maskgan.train.evaluate_maskvae`) and interpolation
   smoothness: ``label_change_fraction`` along ``INTERP_STEPS`` decoded steps between pairs of test masks.

Generators are rebuilt from their own checkpoints' configs (a p2p, dmn and ebst of one run may
differ in width); the data and the evaluation settings come from :func:`evaluation_config`.
Test faces are the first ``eval_faces`` of the test split; everything is deterministic given the
run's checkpoints (seeds are recorded in the result).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import Config
from ..editing import load_run_config
from ..labels import one_hot
from ..metrics import (SegmentationMeter, fid, fid_available, label_change_fraction, load_inception, psnr,
                       sliced_wasserstein, ssim)
from ..nn import build_dmn, build_maskvae, interpolate, logits_to_labels
from ..nn.baseline import build_p2p
from ..runs import record_metrics
from ..train.checkpoint import latest_checkpoint, load_weights

__all__ = ["GENERATOR_STAGES", "EVAL_KEYS", "REGION_DILATE", "INTERP_STEPS", "evaluate_run", "evaluation_config",
           "load_generator", "training_record", "no_generator_message"]

#: Generator stages in ablation order: the baseline, the DMN after stage I, the DMN after EBST, and
#: the control: stage I alone for as many generator updates as EBST's total.
GENERATOR_STAGES: tuple[str, ...] = ("p2p", "dmn", "ebst", "dmn_matched")
#: TrainConfig fields that set up the evaluation (the parser and the sample counts).
EVAL_KEYS: tuple[str, ...] = ("parser_steps", "parser_batch_size", "parser_lr", "parser_base", "parser_depth",
                              "parser_balance", "eval_faces", "eval_edits")
#: Pixels by which SynthFaces' edit region is grown (covers the anti-aliased border of moved parts).
REGION_DILATE = 2
#: Decoded masks along each MaskVAE interpolation (t = 0, 1/8, ..., 1).
INTERP_STEPS = 9
#: Longest side of the images kept for SWD / FID.
KEEP_SIDE = 256
#: Random 7x7 patches per image and pyramid level for SWD (PGGAN uses 128; 64 halves the cost of
#: sorting the projections, the largest part of SWD, at a small loss of precision on small sets).
SWD_PATCHES = 64


def no_generator_message(run_dir: Path | str) -> str:
    run_dir = Path(run_dir)
    return (f"{run_dir} has no trained generator to evaluate (none of {', '.join(s + '/' for s in GENERATOR_STAGES)} "
            f"holds a checkpoint). Train one first: notebooks 02_ebst_stage1 and 03_ebst_stage2 with this run_dir "
            f"(or `python -m maskgan train dmn --run-dir {run_dir}`), or run "
            f"`python -m maskgan ablation --run-dir {run_dir}` to train everything the evaluation compares.")


def _step_of(ckpt: Path) -> int:
    return int(ckpt.name.rsplit("_", 1)[1])


def load_generator(run_dir: Path | str, stage: str, device="cpu"):
    """``(generator in eval mode, its Config, {"checkpoint", "steps"})`` of a generator stage.

    ``p2p`` gives a :class:`~maskgan.nn.baseline.MaskOnlyGenerator`, ``dmn`` / ``ebst`` a
    :class:`~maskgan.nn.dmn.DenseMappingNetwork`; both have ``style(image, mask)`` and ``render(mask, style)``.
    """
    if stage not in GENERATOR_STAGES:
        raise ValueError(f"unknown generator stage {stage!r}; expected one of {', '.join(GENERATOR_STAGES)}")
    ckpt = latest_checkpoint(Path(run_dir) / stage)
    if ckpt is None:
        raise FileNotFoundError(f"{Path(run_dir) / stage} has no checkpoint: run "
                                f"`python -m maskgan train {stage} --run-dir {run_dir}` first")
    cfg = load_run_config(ckpt)
    net = build_p2p(cfg) if stage == "p2p" else build_dmn(cfg)
    load_weights(net, ckpt / f"{'p2p' if stage == 'p2p' else 'dmn'}.safetensors")
    return net.to(device).eval(), cfg, {"checkpoint": str(ckpt), "steps": _step_of(ckpt)}


def training_record(run_dir: Path | str, stage: str) -> dict:
    """How much training a generator stage has had. EBST fine-tunes the stage-I DMN and each of its
    iterations updates the DMN twice (stage I, then stage II with the blender; Algorithm 1), so its
    ``generator_updates`` = stage-I steps + 2 x EBST steps; for p2p and dmn it is their steps.
    (The stage-I steps are those of the ``dmn`` checkpoint present now, which EBST started from
    unless stage I was trained further afterwards.)"""
    run_dir = Path(run_dir)
    steps = _step_of(latest_checkpoint(run_dir / stage))
    if stage != "ebst":
        return {"steps": steps, "generator_updates": steps}
    dmn = latest_checkpoint(run_dir / "dmn")
    pre = _step_of(dmn) if dmn is not None else 0
    return {"steps": steps, "pretrained_stage1_steps": pre, "generator_updates": pre + 2 * steps}


def evaluation_config(run_dir: Path | str, preset: str | None = None, overrides: dict | None = None) -> Config:
    """The config that evaluates ``run_dir``: the one its newest generator was trained with
    (ebst, else dmn, else p2p), with the evaluation settings (:data:`EVAL_KEYS`) of ``preset`` when
    given (useful for runs trained before those settings existed), then ``overrides`` (dotted keys)."""
    run_dir = Path(run_dir)
    for stage in reversed(GENERATOR_STAGES):
        ckpt = latest_checkpoint(run_dir / stage)
        if ckpt is not None:
            break
    else:
        raise FileNotFoundError(no_generator_message(run_dir))
    cfg = load_run_config(ckpt)
    if preset:
        ref = Config.preset(preset).train
        cfg = cfg.with_overrides({f"train.{k}": getattr(ref, k) for k in EVAL_KEYS})
    return cfg.with_overrides(overrides) if overrides else cfg


# --- small helpers --------------------------------------------------------------------------------

def _clean(x):
    """JSON-friendly: NaN / inf -> None, tensors -> floats, recursively."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, torch.Tensor):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _nanmean(values: list[torch.Tensor]) -> float:
    x = torch.cat(values) if values else torch.empty(0)
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else math.nan


def _seg(meter: SegmentationMeter) -> dict:
    s = meter.compute()
    return {"pixel_accuracy": s["pixel_accuracy"], "mean_iou": s["mean_iou"], "mean_accuracy": s["mean_accuracy"]}


def _keep(images: torch.Tensor) -> torch.Tensor:
    """8-bit copy (at most KEEP_SIDE px a side) of images in [-1, 1], for SWD / FID."""
    if max(images.shape[2:]) > KEEP_SIDE:
        images = F.interpolate(images.float(), size=(KEEP_SIDE, KEEP_SIDE), mode="area")
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def _unkeep(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


def _grow(region: torch.Tensor, px: int) -> torch.Tensor:
    if px <= 0:
        return region
    return F.max_pool2d(region[:, None].float(), 2 * px + 1, stride=1, padding=px)[:, 0] > 0


_PAIR_KEYS = ("psnr", "ssim", "psnr_inside", "psnr_outside", "ssim_inside", "ssim_outside")


def _pair_scores(out: torch.Tensor, ref: torch.Tensor, region: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image PSNR / SSIM of ``out`` against ``ref``: whole image, inside and outside ``region``."""
    out, ref, region = out.float().cpu(), ref.float().cpu(), region.cpu()
    return {"psnr": psnr(out, ref), "ssim": ssim(out, ref),
            "psnr_inside": psnr(out, ref, region), "psnr_outside": psnr(out, ref, ~region),
            "ssim_inside": ssim(out, ref, region), "ssim_outside": ssim(out, ref, ~region)}


class _Scores:
    """Accumulates per-image scores (lists of tensors) and a segmentation meter."""

    def __init__(self):
        self.values: dict[str, list[torch.Tensor]] = {k: [] for k in _PAIR_KEYS}
        self.meter = SegmentationMeter()
        self.count = 0

    def add(self, scores: dict[str, torch.Tensor], parse: torch.Tensor | None = None, target=None) -> None:
        for k, v in scores.items():
            self.values[k].append(v)
        self.count += len(next(iter(scores.values())))
        if parse is not None:
            self.meter.update(parse.cpu(), target.cpu())

    def result(self, keys=_PAIR_KEYS, seg: bool = True) -> dict:
        out = {k: _nanmean(self.values[k]) for k in keys}
        if seg:
            out.update(_seg(self.meter))
        out["n"] = self.count
        return out


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


# --- the evaluation ---------------------------------------------------------------------------

def _ensure_parser(run_dir: Path, cfg: Config, device, train_parser: bool, progress: bool):
    from ..train import train
    from ..train.parser import build_parser
    ckpt = latest_checkpoint(run_dir / "parser")
    seconds = None
    if ckpt is None or _step_of(ckpt) < cfg.train.parser_steps:
        if not train_parser:
            raise FileNotFoundError(
                f"{run_dir / 'parser'} has no finished face parser ({cfg.train.parser_steps} steps): run "
                f"`python -m maskgan train parser --run-dir {run_dir}` (or evaluate with train_parser=True)")
        if progress:
            print(f"training the face parser ({cfg.train.parser_steps} steps) into {run_dir / 'parser'}")
        t0 = time.perf_counter()
        train("parser", cfg, run_dir, resume=ckpt is not None, device=str(device), progress=progress)
        seconds = round(time.perf_counter() - t0, 2)
        ckpt = latest_checkpoint(run_dir / "parser")
    pcfg = load_run_config(ckpt)
    if (pcfg.data.dataset, pcfg.data.size) != (cfg.data.dataset, cfg.data.size):
        raise ValueError(f"the face parser in {run_dir / 'parser'} was trained on {pcfg.data.dataset} at "
                         f"{pcfg.data.size} px, but the generators on {cfg.data.dataset} at {cfg.data.size} px; "
                         f"delete {run_dir / 'parser'} and evaluate again to train a matching one")
    parser = load_weights(build_parser(pcfg), ckpt / "parser.safetensors").to(device).eval()
    return parser, {"steps": _step_of(ckpt), "checkpoint": str(ckpt), "training_seconds": seconds}


def _edit_batch(family: str, indices, size: int, device) -> dict[str, torch.Tensor]:
    from ..data.synthfaces import edit_pair, edit_region
    pairs = [edit_pair(family, "test", i, size) for i in indices]

    def img(key):
        stacked = torch.stack([torch.from_numpy(p[key]).permute(2, 0, 1) for p in pairs])
        return stacked.float().div(127.5).sub(1).to(device)

    def lab(key):
        return torch.stack([torch.from_numpy(p[key].astype("int64")) for p in pairs]).to(device)
    region = torch.stack([torch.from_numpy(edit_region(p)) for p in pairs])
    return {"image": img("image"), "label": lab("labels"), "edited_image": img("edited_image"),
            "edited_label": lab("edited_labels"), "region": _grow(region, REGION_DILATE)}


@torch.no_grad()
def _maskvae_section(run_dir: Path, test_ds, n: int, device, batch_size: int) -> dict:
    from ..train import evaluate_maskvae
    ckpt = latest_checkpoint(run_dir / "vae")
    if ckpt is None:
        return {"skipped": f"{run_dir / 'vae'} has no checkpoint (notebook 01_maskvae_pretraining trains it)"}
    vae = load_weights(build_maskvae(load_run_config(ckpt)), ckpt / "maskvae.safetensors").to(device).eval()
    recon = evaluate_maskvae(vae, test_ds, n=n, batch_size=batch_size, device=device)
    n_pairs = max(1, min(n // 2, 32))
    a = torch.stack([test_ds[2 * j]["label"] for j in range(n_pairs)]).to(device)
    b = torch.stack([test_ds[(2 * j + 1) % len(test_ds)]["label"] for j in range(n_pairs)]).to(device)
    za, zb = vae.encode(one_hot(a))[0], vae.encode(one_hot(b))[0]
    walk = torch.stack([logits_to_labels(vae.decode(interpolate(za, zb, float(t))))
                        for t in torch.linspace(0, 1, INTERP_STEPS)]).cpu()  # (T, N, H, W)
    change = label_change_fraction(walk)
    endpoint = float((walk[0] != walk[-1]).double().mean())
    even = endpoint / (INTERP_STEPS - 1)
    return {"steps": _step_of(ckpt), "recon_pixel_accuracy": recon["pixel_accuracy"],
            "recon_mean_iou": recon["mean_iou"], "recon_n": min(n, len(test_ds)),
            "interp_pairs": n_pairs, "interp_steps": INTERP_STEPS, "interp_change_mean": change["mean"],
            "interp_change_max": change["max"], "interp_endpoint_change": endpoint,
            # 1.0: the change is spread evenly over the steps; k: one step carries k times its share
            "interp_max_over_even": change["max"] / even if even > 0 else math.nan}


def evaluate_run(run_dir: Path | str, n: int | None = None, *, n_edits: int | None = None, device=None,
                 cfg: Config | None = None, preset: str | None = None, overrides: dict | None = None,
                 train_parser: bool = True, batch_size: int = 32, swd_seed: int = 0, record: bool = True,
                 progress: bool = False) -> dict:
    """Evaluate every generator stage of ``run_dir`` (p2p, dmn, ebst; see the module docstring).

    ``n``: test faces (default ``cfg.train.eval_faces``); ``n_edits``: edit pairs per SynthFaces edit
    family (default ``cfg.train.eval_edits``; 0 skips edit fidelity); ``cfg`` / ``preset`` / ``overrides``: see
    :func:`evaluation_config`. Trains the face parser first when it is missing (``train_parser``).
    Writes the result into ``<run_dir>/metrics.json``, section ``eval`` (``record=True``), and returns it.
    """
    from ..train.loop import resolve_device
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    stages = [s for s in GENERATOR_STAGES if latest_checkpoint(run_dir / s) is not None]
    if not stages:
        raise FileNotFoundError(no_generator_message(run_dir))
    if cfg is None:
        cfg = evaluation_config(run_dir, preset, overrides)
    elif overrides:
        cfg = cfg.with_overrides(overrides)
    device = resolve_device(device or cfg.device)
    torch.manual_seed(cfg.seed)
    parser, parser_info = _ensure_parser(run_dir, cfg, device, train_parser, progress)  # may train: grads on
    with torch.no_grad():
        results = _evaluate(run_dir, stages, cfg, device, parser, parser_info, n, n_edits, batch_size, swd_seed,
                            progress)
    results["seconds"] = round(time.perf_counter() - t_start, 2)
    results = _clean(results)
    if record:
        record_metrics(run_dir, "eval", results)
    return results


def _evaluate(run_dir: Path, stages: list[str], cfg: Config, device, parser, parser_info: dict, n, n_edits,
              batch_size: int, swd_seed: int, progress: bool) -> dict:
    """The measuring pass of :func:`evaluate_run` (under ``torch.no_grad``)."""
    from ..data import build_dataset
    size = cfg.data.size
    gens = {}
    for stage in stages:
        net, gcfg, _ = load_generator(run_dir, stage, device)
        if gcfg.data.size != size or gcfg.data.dataset != cfg.data.dataset:
            raise ValueError(f"{run_dir / stage} was trained on {gcfg.data.dataset} at {gcfg.data.size} px, but "
                             f"this evaluation uses {cfg.data.dataset} at {size} px; evaluate stages of one dataset "
                             "and size")
        gens[stage] = net
    test_ds = build_dataset(cfg.data, "test")
    n = min(n or cfg.train.eval_faces, len(test_ds))
    synth = cfg.data.dataset == "synthfaces"
    m = (cfg.train.eval_edits if n_edits is None else int(n_edits)) if synth else 0  # 0: no edit fidelity
    if progress:
        print(f"evaluating {', '.join(stages)} on {n} test faces" + (f" and {m} edits per family" if m else ""))

    # 1-2. reconstructions of the test faces (and the parser on the real images)
    parser_real = SegmentationMeter()
    recon = {s: _Scores() for s in stages}
    real_kept, gen_kept = [], {s: [] for s in stages}
    for idx in _batches(n, batch_size):
        items = [test_ds[i] for i in idx]
        image = torch.stack([it["image"] for it in items]).to(device)
        label = torch.stack([it["label"] for it in items]).to(device)
        mask = one_hot(label)
        parser_real.update(parser.parse(image).cpu(), label.cpu())
        real_kept.append(_keep(image))
        for s, g in gens.items():
            out = g.render(mask, g.style(image, mask))
            full = {"psnr": psnr(out.float().cpu(), image.cpu()), "ssim": ssim(out.float().cpu(), image.cpu())}
            recon[s].add(full, parser.parse(out), label)
            gen_kept[s].append(_keep(out))

    # 3. edits with ground truth (SynthFaces)
    edits = {s: {} for s in stages}
    edits_all = {s: _Scores() for s in stages}
    no_edit, no_edit_all, parser_edited = {}, _Scores(), SegmentationMeter()
    families: tuple[str, ...] = ()
    if m:
        from ..data.synthfaces import EDIT_FAMILIES
        families = EDIT_FAMILIES
        for family in families:
            for s in stages:
                edits[s][family] = _Scores()
            no_edit[family] = _Scores()
            for idx in _batches(m, batch_size):
                b = _edit_batch(family, idx, size, device)
                parser_edited.update(parser.parse(b["edited_image"]).cpu(), b["edited_label"].cpu())
                ref = _pair_scores(b["image"], b["edited_image"], b["region"])
                no_edit[family].add(ref)
                no_edit_all.add(ref)
                target = one_hot(b["edited_label"])
                for s, g in gens.items():
                    out = g.render(target, g.style(b["image"], one_hot(b["label"])))
                    scores = _pair_scores(out, b["edited_image"], b["region"])
                    parse = parser.parse(out)
                    edits[s][family].add(scores, parse, b["edited_label"])
                    edits_all[s].add(scores, parse, b["edited_label"])

    # 4. distribution: SWD (and FID when its weights are there)
    real = _unkeep(torch.cat(real_kept))
    have_fid, fid_note = fid_available()
    inception = load_inception(fid_note) if have_fid else None
    val_ds = build_dataset(cfg.data, "val")
    n_val = min(n, len(val_ds))
    val = torch.stack([val_ds[i]["image"] for i in range(n_val)])
    swd_floor = sliced_wasserstein(_unkeep(_keep(val)), real, patches_per_image=SWD_PATCHES, seed=swd_seed)

    results: dict = {
        "dataset": cfg.data.dataset, "split": "test", "image_size": size, "num_faces": n,
        "edit_pairs_per_family": m, "edit_families": list(families), "seed": cfg.seed, "swd_seed": swd_seed,
        "synth_base_seed": 0 if synth else None, "test_faces": f"indices 0..{n - 1} of the test split",
        "stages_evaluated": stages, "region_dilate_px": REGION_DILATE if m else None, "swd_patches": SWD_PATCHES,
        "parser": {**parser_info, "real_test": {**_seg(parser_real), "n": n}},
        "reference": {"swd_real_val_vs_test": swd_floor, "swd_real_n": n_val},
        "fid": {"available": have_fid, "note": fid_note if not have_fid else f"Inception weights: {fid_note}"},
        "stages": {},
    }
    if not m:
        results["edits_skipped"] = ("n_edits=0 was asked for" if synth else
                                    "edit fidelity needs ground-truth edits, which only SynthFaces provides "
                                    f"(this run uses {cfg.data.dataset})")
    else:
        results["reference"]["parser_real_edits"] = {**_seg(parser_edited), "n": m * len(families)}
        results["reference"]["no_edit"] = {"edit": no_edit_all.result(seg=False),
                                           "edit_families": {f: no_edit[f].result(seg=False) for f in families}}
    for s in stages:
        gen = _unkeep(torch.cat(gen_kept[s]))
        entry = {"training": training_record(run_dir, s),
                 "recon": recon[s].result(keys=("psnr", "ssim")),
                 "swd": sliced_wasserstein(gen, real, patches_per_image=SWD_PATCHES, seed=swd_seed),
                 "fid": fid(gen, real, model=inception, device=device) if have_fid else None}
        if m:
            overall = edits_all[s].result()
            entry["edited_masks"] = {k: overall.pop(k) for k in ("pixel_accuracy", "mean_iou", "mean_accuracy")}
            entry["edited_masks"]["miou_drop_vs_recon"] = entry["recon"]["mean_iou"] - entry["edited_masks"]["mean_iou"]
            entry["edit"] = overall
            entry["edit_families"] = {f: edits[s][f].result() for f in families}
        results["stages"][s] = entry

    # 5. MaskVAE
    results["maskvae"] = _maskvae_section(run_dir, test_ds, n, device, batch_size)
    return results
