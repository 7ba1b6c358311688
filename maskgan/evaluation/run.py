"""``evaluate_run``: every metric of MaskGAN's Sec. 4 (and the SynthFaces edit metrics) for a run.

How the numbers are made (one pass over the test data, every generator stage on every batch):

1. **Face parser** (stage ``parser``, :mod:`maskgan.train.parser`): trained on the run's training
   split if ``<run_dir>/parser`` is missing or shorter than ``parser.steps``, then scored on the
   real test images.
2. **Reconstructions**: test face ``(I^t, M^t)`` -> ``G.render(M^t, G.style(I^t, M^t))``; the
   parser's pixel accuracy / mIoU of the output against ``M^t``, PSNR / SSIM against ``I^t``.
3. **Edits** (SynthFaces): for every edit family, pairs ``edit_pair(family, "test", i)`` for
   ``i < eval.edits``: the edited mask rendered in the style of the *original* face, compared
   with the ground-truth edited render (PSNR / SSIM, whole image and inside / outside the edited
   region) and parsed against the edited mask. The region is :func:`maskgan.data.synthfaces.edit_region`
   grown by :data:`REGION_DILATE` px, so that the 1-2 px anti-aliased border of a moved part
   counts as inside and "outside" holds only pixels the edit must not change. Every edit is scored
   twice: as the paper's full re-render and composited into the original (:mod:`maskgan.composite`,
   the kit's default edit), each next to the reference that every edit must beat, the unedited
   original ("no edit"): the share of pairs whose whole-image PSNR beats it, and the PSNR in the
   seam band around the composite's edge (:func:`maskgan.composite.seam_band`).
4. **Distribution**: SWD of the reconstructions against the real test images; FID if the
   Inception weights are available. Images are kept as 8-bit (at most 256 px a side) for these.
5. **User-like stroke edits** (:mod:`.strokes`): 1-3 brush strokes per test face, painted as the app
   paints them; parser mIoU against the edited mask, accuracy on the stroke pixels, and PSNR against
   the original away from the strokes (any dataset: no ground truth needed).
6. **MaskVAE**: held-out reconstruction (:func:`evaluate_maskvae`) and interpolation
   smoothness: ``label_change_fraction`` along ``INTERP_STEPS`` decoded steps between pairs of test masks.

Generators are rebuilt from their own checkpoints' configs (a p2p, dmn and ebst of one run may
differ in width); the data and the evaluation settings come from :func:`evaluation_config`.
Test faces are the first ``eval.faces`` of the test split; everything is deterministic given the
run's checkpoints (seeds are recorded in the result).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..composite import DEFAULT_BLEND, changed_pixels, check_blend, composite, default_feather, default_margin, seam_band
from ..config import Config
from ..device import resolve_device
from ..precision import inference_net
from ..errors import ConfigError, StageMissing
from ..labels import one_hot
from ..metrics import (PAIR_KEYS, SegmentationMeter, fid, fid_available, grow_region, label_change_fraction,
                       load_inception, pair_scores, psnr, sliced_wasserstein, ssim)
from ..nn import interpolate, logits_to_labels
from ..run import Run
from ..stages import generator_stages, get_stage
from .records import Evaluation, MaskVAEEval, PairFidelity, ParserRecord, Reference, Segmentation, StageEval

__all__ = ["REGION_DILATE", "INTERP_STEPS", "evaluate_run", "evaluation_config", "evaluate_maskvae", "measure",
           "ensure_parser", "no_generator_message"]

#: Pixels by which SynthFaces' edit region is grown (covers the anti-aliased border of moved parts).
REGION_DILATE = 2
#: Half-width in px of the seam band scored around a composite's edge (:func:`maskgan.composite.seam_band`).
BAND_WIDTH = 1
#: Seed of the user-like stroke edits (:mod:`.strokes`): fixed, so every run is scored on the same edits.
STROKES_SEED = 0
#: Decoded masks along each MaskVAE interpolation (t = 0, 1/8, ..., 1).
INTERP_STEPS = 9
#: Longest side of the images kept for SWD / FID.
KEEP_SIDE = 256
#: Random 7x7 patches per image and pyramid level for SWD (PGGAN uses 128; 64 halves the cost of
#: sorting the projections, the largest part of SWD, at a small loss of precision on small sets).
SWD_PATCHES = 64


def no_generator_message(run_dir: Path | str) -> str:
    gens = generator_stages()
    method = [get_stage(s) for s in gens if get_stage(s).role == "generator"]
    return (f"{run_dir} has no trained generator to evaluate (none of {', '.join(s + '/' for s in gens)} holds a "
            f"checkpoint). Train one first: {method[0].title}: {method[0].how_to_train(run_dir)}; or run "
            f"`python -m maskgan ablation --run-dir {run_dir}` to train everything the evaluation compares.")


def evaluation_config(run: Run | Path | str, preset: str | None = None, overrides: dict | None = None) -> Config:
    """The config that evaluates a run: the one its newest generator was trained with (the last
    generator stage that has a checkpoint), with the ``parser`` and ``eval`` sections of ``preset``
    when given, then ``overrides`` (dotted keys)."""
    run = run if isinstance(run, Run) else Run(run)
    trained = run.trained()
    if not trained:
        raise StageMissing(no_generator_message(run.path))
    cfg = run.config(trained[-1])
    if preset:
        ref = Config.preset(preset)
        cfg = cfg.with_overrides({"parser": ref.to_dict()["parser"], "eval": ref.to_dict()["eval"]})
    return cfg.with_overrides(overrides) if overrides else cfg


# --- small helpers --------------------------------------------------------------------------------

def _nanmean(values: list[torch.Tensor]) -> float | None:
    x = torch.cat(values) if values else torch.empty(0)
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else None


def _seg(meter: SegmentationMeter, n: int) -> Segmentation:
    s = meter.compute()
    return Segmentation(s["pixel_accuracy"], s["mean_iou"], s["mean_accuracy"], n)


def _keep(images: torch.Tensor) -> torch.Tensor:
    """8-bit copy (at most KEEP_SIDE px a side) of images in [-1, 1], for SWD / FID."""
    if max(images.shape[2:]) > KEEP_SIDE:
        images = F.interpolate(images.float(), size=(KEEP_SIDE, KEEP_SIDE), mode="area")
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def _unkeep(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


#: Per-pair values :class:`_Scores` averages into a :class:`PairFidelity`.
EDIT_KEYS: tuple[str, ...] = PAIR_KEYS + ("psnr_band", "beats_no_edit")


class _Scores:
    """Accumulates per-image pair scores and a segmentation meter."""

    def __init__(self):
        self.values: dict[str, list[torch.Tensor]] = {k: [] for k in EDIT_KEYS}
        self.meter = SegmentationMeter()
        self.count = 0

    def add(self, scores: dict[str, torch.Tensor], parse: torch.Tensor | None = None, target=None) -> None:
        for k, v in scores.items():
            self.values[k].append(v.cpu())
        self.count += len(next(iter(scores.values())))
        if parse is not None:
            self.meter.update(parse.cpu(), target.cpu())

    def fidelity(self) -> PairFidelity:
        return PairFidelity(**{k: _nanmean(self.values[k]) for k in EDIT_KEYS}, n=self.count)

    def parse(self) -> Segmentation:
        return _seg(self.meter, self.count)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


# --- the evaluation ---------------------------------------------------------------------------

def ensure_parser(run: Run, cfg: Config, device, train_parser: bool, progress: bool):
    from ..train import train
    stage = get_stage("parser")
    ckpt = run.latest(stage)
    seconds = None
    if ckpt is None or ckpt.step < cfg.parser.steps:
        if not train_parser:
            raise StageMissing(f"{run.stage_dir(stage)} has no finished face parser ({cfg.parser.steps} steps). "
                               f"To train it, {stage.how_to_train(run.path, cfg)} (or evaluate with train_parser=True)")
        if progress:
            print(f"training the face parser ({cfg.parser.steps} steps) into {run.stage_dir(stage)}")
        t0 = time.perf_counter()
        # a parser trained for fewer steps than asked is trained on with a schedule to the new total
        train("parser", cfg, run.path, resume=ckpt is not None, device=str(device), progress=progress,
              extend_to=cfg.parser.steps if ckpt is not None else None)
        seconds = round(time.perf_counter() - t0, 2)
    parser, pcfg, ckpt = run.load_net(stage, device=device)
    if (pcfg.data.dataset, pcfg.data.size) != (cfg.data.dataset, cfg.data.size):
        raise ConfigError(f"the face parser in {run.stage_dir(stage)} was trained on {pcfg.data.dataset} at "
                          f"{pcfg.data.size} px, but the generators on {cfg.data.dataset} at {cfg.data.size} px; "
                          f"delete {run.stage_dir(stage)} and evaluate again to train a matching one")
    return parser, {"steps": ckpt.step, "checkpoint": str(ckpt.path), "training_seconds": seconds}


def _edit_batch(family: str, indices, size: int, device) -> dict[str, torch.Tensor]:
    from ..data.synthfaces import edit_pair, edit_region
    pairs = [edit_pair(family, "test", i, size) for i in indices]
    batch = {k: torch.stack([p[k] for p in pairs]).to(device) for k in ("image", "label", "edited_image", "edited_label")}
    batch["region"] = grow_region(torch.stack([edit_region(p) for p in pairs]), REGION_DILATE).to(device)
    changed = changed_pixels(batch["label"], batch["edited_label"])
    batch["band"] = seam_band(changed, default_margin(size), BAND_WIDTH)
    return batch


def _edit_scores(output: torch.Tensor, b: dict, no_edit_psnr: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """:func:`pair_scores` of an edit against the truth, plus the seam band and (unless this *is* the
    unedited original) whether it beats the unedited original on the whole image."""
    scores = pair_scores(output, b["edited_image"], b["region"])
    scores["psnr_band"] = psnr(output, b["edited_image"], b["band"])
    if no_edit_psnr is not None:
        scores["beats_no_edit"] = (scores["psnr"] > no_edit_psnr).double()
    return scores


@torch.no_grad()
def evaluate_maskvae(vae, dataset, n: int = 200, batch_size: int = 32, device=None) -> dict:
    """Held-out reconstruction quality of a MaskVAE (z = mu, eval mode): pixel accuracy and mIoU."""
    device = device or next(vae.parameters()).device
    vae.eval()
    meter = SegmentationMeter()
    n = min(n, len(dataset))
    for idx in _batches(n, batch_size):
        labels = torch.stack([dataset[i]["label"] for i in idx]).to(device)
        meter.update(logits_to_labels(vae(one_hot(labels))[0]), labels)
    return meter.compute()


@torch.no_grad()
def _maskvae_section(run: Run, test_ds, n: int, device, batch_size: int) -> MaskVAEEval | None:
    if not run.has("vae"):
        return None
    ckpt = run.require("vae")
    vae = run.maskvae(device)
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
    return MaskVAEEval(steps=ckpt.step, recon_pixel_accuracy=recon["pixel_accuracy"],
                       recon_mean_iou=recon["mean_iou"], recon_n=min(n, len(test_ds)), interp_pairs=n_pairs,
                       interp_steps=INTERP_STEPS, interp_change_mean=change["mean"], interp_change_max=change["max"],
                       interp_endpoint_change=endpoint,
                       interp_max_over_even=change["max"] / even if even > 0 else math.nan)


def evaluate_run(run_dir: Path | str | Run, n: int | None = None, *, n_edits: int | None = None, device=None,
                 cfg: Config | None = None, preset: str | None = None, overrides: dict | None = None,
                 train_parser: bool = True, batch_size: int = 32, swd_seed: int = 0, record: bool = True,
                 progress: bool = False, blend: str = DEFAULT_BLEND, precision: str = "fp32") -> Evaluation:
    """Evaluate every generator stage of a run (see the module docstring).

    ``n``: test faces (default ``cfg.eval.faces``); ``n_edits``: edit pairs per SynthFaces edit
    family (default ``cfg.eval.edits``; 0 skips edit fidelity); ``cfg`` / ``preset`` / ``overrides``: see
    :func:`evaluation_config`; ``blend``: how edits are composited (:mod:`maskgan.composite`; every
    edit is also scored as the paper's full re-render). Trains the face parser first when it is missing (``train_parser``).
    Writes the result into ``<run_dir>/metrics.json``, section ``eval`` (``record=True``), and returns it.
    ``precision`` (``fp32``, ``bf16``, ``auto``): what the generators render in (:mod:`maskgan.precision`).
    """
    t_start = time.perf_counter()
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    stages = run.trained()
    if not stages:
        raise StageMissing(no_generator_message(run.path))
    if cfg is None:
        cfg = evaluation_config(run, preset, overrides)
    elif overrides:
        cfg = cfg.with_overrides(overrides)
    device = resolve_device(device or cfg.device)
    torch.manual_seed(cfg.seed)
    parser, parser_info = ensure_parser(run, cfg, device, train_parser, progress)  # may train: grads on
    gens = {}
    for stage in stages:
        net, gcfg, _ = run.generator(stage, device)
        gens[stage] = (inference_net(net, precision, device), gcfg, run.training_record(stage))
    with torch.no_grad():
        result = measure(run, gens, cfg, device, parser, parser_info, n, n_edits, batch_size, swd_seed, progress,
                         blend=blend)
    result.seconds = round(time.perf_counter() - t_start, 2)
    if record:
        run.record_metrics("eval", result.to_dict())
    return result


def _reconstructions(gens: dict, test_ds, n: int, parser, device, batch_size: int):
    """Phase 1-2: every generator renders the first ``n`` test faces from their own masks and images;
    the parser reads the real images and the renders. Returns the scores and 8-bit copies for SWD."""
    parser_real = SegmentationMeter()
    recon = {s: _Scores() for s in gens}
    real_kept, gen_kept = [], {s: [] for s in gens}
    for idx in _batches(n, batch_size):
        items = [test_ds[i] for i in idx]
        image = torch.stack([it["image"] for it in items]).to(device)
        label = torch.stack([it["label"] for it in items]).to(device)
        mask = one_hot(label)
        parser_real.update(parser.parse(image).cpu(), label.cpu())
        real_kept.append(_keep(image))
        for s, g in gens.items():
            out = g.render(mask, g.style(image, mask)).float()
            recon[s].add({"psnr": psnr(out, image), "ssim": ssim(out, image)}, parser.parse(out), label)
            gen_kept[s].append(_keep(out))
    return _seg(parser_real, n), recon, real_kept, gen_kept


def _edits(gens: dict, m: int, size: int, parser, device, batch_size: int, blend: str = DEFAULT_BLEND):
    """Phase 3 (SynthFaces): ``m`` ground-truth edit pairs per family, each edited mask rendered in the
    original's style, scored as the full re-render and composited into the original (``blend``); the
    unedited original is the reference ("no edit") that every edit must beat."""
    from ..data.synthfaces import EDIT_FAMILIES
    kinds = ("rerender", "composite")
    per_family = {k: {s: {f: _Scores() for f in EDIT_FAMILIES} for s in gens} for k in kinds}
    overall = {k: {s: _Scores() for s in gens} for k in kinds}
    no_edit, no_edit_all, parser_edited = {f: _Scores() for f in EDIT_FAMILIES}, _Scores(), SegmentationMeter()
    for family in EDIT_FAMILIES:
        for idx in _batches(m, batch_size):
            b = _edit_batch(family, idx, size, device)
            parser_edited.update(parser.parse(b["edited_image"]).cpu(), b["edited_label"].cpu())
            ref = _edit_scores(b["image"], b, None)
            no_edit[family].add(ref)
            no_edit_all.add(ref)
            target = one_hot(b["edited_label"])
            for s, g in gens.items():
                out = g.render(target, g.style(b["image"], one_hot(b["label"]))).float()
                comp = composite(b["image"], out, b["label"], b["edited_label"], blend).image
                for kind, image in zip(kinds, (out, comp)):
                    scores = _edit_scores(image, b, ref["psnr"])
                    parse = parser.parse(image)
                    per_family[kind][s][family].add(scores, parse, b["edited_label"])
                    overall[kind][s].add(scores, parse, b["edited_label"])
    reference = {"parser_real_edits": _seg(parser_edited, m * len(EDIT_FAMILIES)), "no_edit": no_edit_all.fidelity(),
                 "no_edit_families": {f: no_edit[f].fidelity() for f in EDIT_FAMILIES}}
    return list(EDIT_FAMILIES), per_family, overall, reference


def measure(run: Run, generators: dict, cfg: Config, device, parser, parser_info: dict, n, n_edits,
            batch_size: int = 32, swd_seed: int = 0, progress: bool = False, maskvae: bool = True,
            blend: str = DEFAULT_BLEND) -> Evaluation:
    """The measuring pass of :func:`evaluate_run` (call under ``torch.no_grad``), for any generators:
    ``{label: (network, its Config, training record)}``; every generator sees every batch. Edits are
    scored as full re-renders and composited with ``blend`` (:mod:`maskgan.composite`)."""
    check_blend(blend, allow_rerender=False)
    from ..data import build_dataset
    size = cfg.data.size
    gens, training = {}, {}
    for label, (net, gcfg, record) in generators.items():
        if gcfg.data.size != size or gcfg.data.dataset != cfg.data.dataset:
            raise ConfigError(f"{label} was trained on {gcfg.data.dataset} at {gcfg.data.size} px, but this "
                              f"evaluation uses {cfg.data.dataset} at {size} px; evaluate generators of one dataset "
                              "and size")
        gens[label], training[label] = net, record
    test_ds = build_dataset(cfg.data, "test")
    n = min(n or cfg.eval.faces, len(test_ds))
    synth = cfg.data.dataset == "synthfaces"
    m = (cfg.eval.edits if n_edits is None else int(n_edits)) if synth else 0  # 0: no edit fidelity
    if progress:
        print(f"evaluating {', '.join(gens)} on {n} test faces" + (f" and {m} edits per family" if m else ""))
    parser_real, recon, real_kept, gen_kept = _reconstructions(gens, test_ds, n, parser, device, batch_size)
    families, per_family, overall, edit_ref = _edits(gens, m, size, parser, device, batch_size, blend) if m else ([], {}, {}, {})

    # 4. distribution: SWD (and FID when its weights are there)
    real = _unkeep(torch.cat(real_kept))
    have_fid, fid_note = fid_available()
    inception = load_inception(fid_note) if have_fid else None
    val_ds = build_dataset(cfg.data, "val")
    n_val = min(n, len(val_ds))
    val = torch.stack([val_ds[i]["image"] for i in range(n_val)])
    swd_floor = sliced_wasserstein(_unkeep(_keep(val)), real, patches_per_image=SWD_PATCHES, seed=swd_seed)

    results: dict[str, StageEval] = {}
    for s in gens:
        gen = _unkeep(torch.cat(gen_kept[s]))
        r = recon[s].fidelity()
        entry = StageEval(training=training[s], recon_psnr=r.psnr, recon_ssim=r.ssim, recon_parse=recon[s].parse(),
                          swd=sliced_wasserstein(gen, real, patches_per_image=SWD_PATCHES, seed=swd_seed),
                          fid=fid(gen, real, model=inception, device=device) if have_fid else None)
        if m:
            full, comp = overall["rerender"][s], overall["composite"][s]
            entry.edited_parse, entry.edit = full.parse(), full.fidelity()
            entry.edit_families = {f: per_family["rerender"][s][f].fidelity() for f in families}
            entry.edit_families_parse = {f: per_family["rerender"][s][f].parse() for f in families}
            entry.edited_parse_composite, entry.edit_composite = comp.parse(), comp.fidelity()
            entry.edit_composite_families = {f: per_family["composite"][s][f].fidelity() for f in families}
        results[s] = entry

    # 5. user-like stroke edits (any dataset: they need no ground truth)
    from .strokes import evaluate_strokes
    # the strokes are part of the test set: the same for every run (not the training seed)
    strokes = evaluate_strokes(gens, test_ds, parser, n=n, seed=STROKES_SEED, batch_size=batch_size, device=device,
                               blend=blend)

    # 6. MaskVAE
    vae = _maskvae_section(run, test_ds, n, device, batch_size) if maskvae else None
    return Evaluation(
        dataset=cfg.data.dataset, split="test", image_size=size, num_faces=n, seed=cfg.seed, swd_seed=swd_seed,
        swd_patches=SWD_PATCHES, test_faces=f"indices 0..{n - 1} of the test split",
        parser=ParserRecord(steps=parser_info["steps"], checkpoint=parser_info["checkpoint"],
                            training_seconds=parser_info["training_seconds"], real_test=parser_real),
        reference=Reference(swd_real_val_vs_test=swd_floor, swd_real_n=n_val, **edit_ref), fid_available=have_fid,
        fid_note=fid_note if not have_fid else f"Inception weights: {fid_note}", stages=results,
        edit_pairs_per_family=m, edit_families=families, region_dilate_px=REGION_DILATE if m else None,
        composite={"blend": blend, "margin": default_margin(size), "feather": default_feather(size),
                   "band_width": BAND_WIDTH} if m else None,
        edits_skipped=None if m else ("n_edits=0 was asked for" if synth else
                                      "edit fidelity needs ground-truth edits, which only SynthFaces provides "
                                      f"(this run uses {cfg.data.dataset})"),
        strokes=strokes, maskvae=vae, maskvae_skipped=None if vae is not None or not maskvae else
        f"{run.stage_dir('vae')} has no checkpoint (notebook {get_stage('vae').notebook} trains it)")
