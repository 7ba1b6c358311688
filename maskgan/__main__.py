"""Command line: ``python -m maskgan <command>`` (also installed as ``maskgan``).

Commands
  train       train one stage (see `train --help` for the stages), resumable, extendable, DDP
  evaluate    metrics of a run (face-parser mask fidelity, SynthFaces edit fidelity, SWD/FID, MaskVAE);
              --pretrained: the models shipped with the kit
  ablation    train every stage the run lacks, then evaluate them all
  study       the ablation over training seeds: mean +- std over several evaluated runs
  curves      learning curves: every kept checkpoint of a stage, measured
  compare-blends       every way of compositing an edit into its face, against doing nothing (SynthFaces)
  demo        the CPU demo: every notebook at the ``cpu`` preset on SynthFaces, then a summary
  publish-figures      copy a run's figures into figures/ for the README (a developer's step)
  export-pretrained    a trained run's models -> pretrained/NAME, float16, with their record (a developer's step)
  pipeline    run the numbered notebooks with papermill (any preset, any data)
  synth       write SynthFaces to disk in the prepared-folder layout
  prepare-celebamask   the official CelebAMask-HQ archive -> a prepared folder
  import-weights       the authors' released generator (and blender, MaskVAE), a BiSeNet face parser
  bench       speed benchmarks on this machine

Errors of the kit (a missing stage, a damaged file, a bad value) are printed as one paragraph,
without a traceback, with exit status 2 (``--debug`` shows the traceback); Ctrl-C exits with 130
after saying what was saved and how to continue.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import ConfigError, MaskGANError, storage_error


def _parse_set(items: list[str] | None) -> dict:
    """``["model.dmn.ngf=32", "data.flip=true"]`` -> ``{"model.dmn.ngf": 32, "data.flip": True}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. model.dmn.ngf=32), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


# --- argparse types of the numeric options: a bad value is refused by the parser, naming the option
# (``argument --n: expected a positive whole number, got -1``), before any work is done.

def _whole(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (counts, sizes, workers)."""
    value = _whole(text, "a positive whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (seeds; counts where 0 means none)."""
    value = _whole(text, "a whole number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    """argparse type: a positive number of training steps."""
    value = _whole(text, "a whole number of steps")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of steps, got {value}")
    return value


def seed_list(text: str) -> list[int]:
    """argparse type: comma-separated distinct seeds >= 0, e.g. ``0,1,2``."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers >= 0 (e.g. 0,1,2), got {text!r}")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds, got {text!r} (a seed twice trains the same run)")
    return seeds


def _add_run_args(p: argparse.ArgumentParser, run_dir: bool = True) -> None:
    from .config import PRESETS
    p.add_argument("--preset", default="cpu", choices=list(PRESETS), help="configuration preset (default: cpu)")
    if run_dir:
        p.add_argument("--run-dir", default=None,
                       help="folder for checkpoints, logs, figures and executed notebooks (default: runs/<preset>)")
    p.add_argument("--data", default="", choices=["", "synthfaces", "celebamask-hq"],
                   help="dataset (default: the preset's: synthfaces for smoke/cpu, celebamask-hq for paper)")
    p.add_argument("--data-root", default="", help="prepared folder (required for celebamask-hq)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="config override, repeatable (e.g. --set model.dmn.ngf=32)")


def _demo_kernel_env() -> dict[str, str]:
    """The demo's kernels: one thread count for every notebook, the one this process took (the free
    cores, or what the user fixed with MASKGAN_THREADS / OMP_NUM_THREADS), written out so that the run
    records it; and the instruction-set pins of maskgan.device.PINNED_KERNELS. Together they let a run
    be compared with the README's to the bit (docs/reproducibility.md)."""
    import torch

    from .device import THREADS_ENV, pinned_kernel_env
    return {**pinned_kernel_env(), THREADS_ENV: str(torch.get_num_threads())}


def _cmd_pipeline(args, demo: bool = False) -> int:
    from .pipeline import run_pipeline
    run_dir = Path(args.run_dir or ("runs/demo" if demo else f"runs/{args.preset}"))
    only = [s for part in (args.only or []) for s in part.split(",")] if not demo else None
    results = run_pipeline(args.preset, run_dir, data=args.data, data_root=args.data_root,
                           device=args.device, seed=args.seed, overrides=_parse_set(args.set),
                           only=only, force=args.force, kernel_env=_demo_kernel_env() if demo else None)
    print(f"\nExecuted notebooks are in {run_dir / 'notebooks'}")
    if demo:
        from .summary import print_summary
        print_summary(run_dir, results)
    return 0


def _cmd_publish(args) -> int:
    from .pipeline import publish_figures, publish_pretrained_figures
    if args.pretrained:
        for path in publish_pretrained_figures(args.pretrained):
            print(f"figure: {path}")
        return 0
    if args.run_dir is None:
        raise ConfigError("publish-figures needs --run-dir RUN_DIR (or --pretrained for the shipped models' figures)")
    copied = publish_figures(args.run_dir)
    print(f"copied {len(copied)} figures of {args.run_dir} to {copied[0].parent if copied else 'figures/'}"
          if copied else f"{args.run_dir} has no figures/ to publish")
    return 0


def _add_precision(p, default: str, help_text: str) -> None:
    from .precision import PRECISIONS
    p.add_argument("--precision", default=default, choices=list(PRECISIONS), help=f"{help_text} (default {default})")


def _run_config(args):
    """The config and run folder that the common run options (_add_run_args) name."""
    from .config import make_config
    cfg = make_config(args.preset, data=args.data, data_root=args.data_root, device=args.device, seed=args.seed,
                      overrides=_parse_set(args.set))
    return cfg, Path(args.run_dir or f"runs/{args.preset}")


def _cmd_train(args) -> int:
    from .train import train
    cfg, run_dir = _run_config(args)
    args._interrupt_hint = (args.stage, run_dir, cfg)
    summary = train(args.stage, cfg, run_dir, resume=args.resume or args.extend_to is not None, steps=args.steps,
                    extend_to=args.extend_to)
    print(json.dumps(summary, indent=2))
    return 0


def _blend_arg(args) -> dict:
    if getattr(args, "blend", None) is None:
        return {}
    from .composite import check_blend
    return {"blend": check_blend(args.blend, allow_rerender=False)}


def _cmd_evaluate_pretrained(args) -> int:
    from .evaluation import evaluate_run, format_eval_table
    from .evaluation.records import Evaluation
    from .pretrained import pretrained_label, pretrained_run, read_record
    run = pretrained_run(args.pretrained)  # verified against the recorded sha256 first
    record = read_record(args.pretrained)
    print(pretrained_label(args.pretrained))
    for stage, entry in record["stages"].items():
        train = entry.get("training", {})
        updates = f", {train['generator_updates']} generator updates" if "generator_updates" in train else ""
        print(f"  {stage:14s} step {entry['step']}{updates}")
    if args.record and not args.measure:
        raise ConfigError("--record replaces the shipped record's evaluation with a new measurement: add --measure")
    if args.measure:
        result = evaluate_run(run, args.n, n_edits=args.edits, device=args.device, train_parser=False, record=False,
                              progress=True, precision=args.precision, **_blend_arg(args))
        print(f"\nmeasured now ({result.seconds} s):")
        if args.record:
            from .evaluation.shipped import record_evaluation
            path = record_evaluation(args.pretrained, result)
            print(f"(recorded in {path}, section 'evaluation')")
    else:
        result = Evaluation.from_dict(record["evaluation"])
        print(f"\nrecorded when the models were exported ({record['exported']}; `--measure` measures again):")
    print(format_eval_table(result))
    return 0


def _cmd_export_pretrained(args) -> int:
    from .evaluation.shipped import export_pretrained
    from .io import read_json
    recipe = read_json(args.recipe)
    history = read_json(args.history) if args.history else None
    record = export_pretrained(args.run_dir, args.name, title=args.title, recipe=recipe, history=history,
                               overwrite=args.overwrite, n=args.n, n_edits=args.edits)
    print(f"wrote pretrained/{args.name}: {len(record['stages'])} stages, {record['total_bytes'] / 2**20:.1f} MiB")
    return 0


def _cmd_study(args) -> int:
    from .evaluation.study import format_study, read_study, run_study
    from .io import atomic_write_json
    if args.train:
        if args.run_dir:
            raise ConfigError("study --train trains into --root/seed_<s>; give --root, not --run-dir")
        cfg, root = _run_config(args)
        result = run_study(args.root or root, cfg, args.seeds, vary_stage_one=args.vary_stage_one, n=args.n,
                           n_edits=args.edits)
    elif args.run_dir:
        result = read_study(args.run_dir)
    else:
        raise ConfigError("study needs evaluated runs (--run-dir, repeated) or --train")
    print(format_study(result))
    if args.out:
        atomic_write_json(args.out, result)
        print(f"\nwritten to {args.out}")
    return 0


def _cmd_evaluate(args) -> int:
    from .evaluation import eval_figures, evaluate_run, format_eval_table
    if args.pretrained is not None:
        return _cmd_evaluate_pretrained(args)
    if args.run_dir is None:
        raise ConfigError("evaluate needs --run-dir RUN_DIR (a trained run) or --pretrained (the shipped models)")
    result = evaluate_run(args.run_dir, args.n, n_edits=args.edits, device=args.device, preset=args.preset,
                          overrides=_parse_set(args.set), train_parser=not args.no_parser_training, progress=True,
                          precision=args.precision, **_blend_arg(args))
    print(format_eval_table(result))
    if args.figures:
        for name in eval_figures(args.run_dir, result, device=args.device or "cpu"):
            print(f"figure: {Path(args.run_dir) / 'figures' / name}.png")
    print(f"\nwritten to {Path(args.run_dir) / 'metrics.json'} (section 'eval'), {result.seconds} s")
    return 0


def _cmd_ablation(args) -> int:
    from .evaluation import format_eval_table, run_ablation
    cfg, run_dir = _run_config(args)
    result = run_ablation(run_dir, cfg, n=args.n, n_edits=args.edits)
    print(format_eval_table(result))
    if args.figures:
        from .evaluation import eval_figures
        for name in eval_figures(run_dir, result, device=args.device if args.device != "auto" else "cpu"):
            print(f"figure: {run_dir / 'figures' / name}.png")
    print(f"\ntrained now: {', '.join(result.trained_now) or 'nothing'}; "
          f"written to {run_dir / 'metrics.json'} (section 'eval')")
    return 0


def _cmd_curves(args) -> int:
    from .evaluation.curves import learning_curve
    cfg = None
    if args.set:
        from .evaluation import evaluation_config
        cfg = evaluation_config(args.run_dir, overrides=_parse_set(args.set))
    curve = learning_curve(args.run_dir, args.stage, cfg=cfg, n=args.n, n_edits=args.edits, every=args.every,
                           device=args.device)
    keys = [k for k in curve["points"][0] if k != "step"]
    from .text import format_table
    print(format_table([[p["step"]] + [p[k] for k in keys] for p in curve["points"]], ["step"] + keys))
    print(f"\nwritten to {Path(args.run_dir) / 'curves' / (args.stage + '.json')} and the figure "
          f"{Path(args.run_dir) / 'figures' / ('curve_' + args.stage + '.png')}")
    return 0


def _cmd_compare_blends(args) -> int:
    from .device import resolve_device
    from .evaluation.blends import compare_blends, format_blends_table
    from .io import atomic_write_json
    from .run import Run
    if (args.run_dir is None) == (args.pretrained is None):
        raise ConfigError("compare-blends needs either --run-dir RUN_DIR (a trained SynthFaces run) or --pretrained")
    if args.pretrained is not None:
        from .pretrained import pretrained_run
        run = pretrained_run(args.pretrained)
    else:
        run = Run(args.run_dir)
    stages = [s for s in (args.stage or "").split(",") if s] or run.trained()
    device = resolve_device(args.device)
    gens, size = {}, None
    for stage in stages:
        net, cfg, _ = run.generator(stage, device)
        if cfg.data.dataset != "synthfaces":
            raise ConfigError(f"{run.path}/{stage} was trained on {cfg.data.dataset}; comparing blends needs "
                              "SynthFaces' ground-truth edits")
        gens[stage], size = net, cfg.data.size
    margins = [int(m) for m in args.margins.split(",")] if args.margins else []
    result = compare_blends(gens, size, n_edits=args.edits, margins=margins, device=device, progress=True)
    print(format_blends_table(result))
    if args.out:
        atomic_write_json(args.out, result)
        print(f"\nwritten to {args.out}")
    return 0


def _cmd_synth(args) -> int:
    from .data.synthfaces import materialise
    counts = {"train": args.train, "val": args.val, "test": args.test}
    result = materialise(args.out, counts=counts, size=args.size, base_seed=args.seed, workers=args.workers)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_prepare(args) -> int:
    from .data.celebamask import prepare_celebamask
    prepare_celebamask(args.src, args.out, size=args.size, workers=args.workers, limit=args.limit,
                       on_error=args.on_error, part_size=args.part_size, progress=not args.no_progress)
    return 0


def _cmd_bench(args) -> int:
    from .bench import run_benchmarks
    from .device import resolve_device
    device = str(resolve_device(args.device))  # cuda on a CPU-only torch: said before any benchmark runs
    run_benchmarks(only=args.only, out=args.out, device=device, precision=args.precision)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .stages import STAGES
    parser = argparse.ArgumentParser(prog="python -m maskgan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of the kit's errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the CPU demo pipeline on SynthFaces")
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--force", action="store_true", help="re-run notebooks that already ran")
    p.set_defaults(func=lambda a: _cmd_pipeline(argparse.Namespace(
        **vars(a), preset="cpu", data="", data_root="", device="auto", seed=0, set=None, only=None),
        demo=True))

    p = sub.add_parser("publish-figures", help="copy a run's figures into the repository's figures/ (a developer's "
                                               "step: it changes the checkout)")
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--pretrained", nargs="?", const="synthfaces64", default=None, metavar="NAME",
                   help="instead: draw the shipped models' figures into figures/pretrained_*.png and "
                        "figures/04_ebst_iteration.png")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("pipeline", help="run the numbered notebooks with papermill")
    _add_run_args(p)
    p.add_argument("--only", action="append", help="notebook numbers or names, e.g. --only 00,01")
    p.add_argument("--force", action="store_true", help="re-run notebooks that already ran")
    p.set_defaults(func=_cmd_pipeline)

    stages_help = "; ".join(f"{s.name}: {s.summary}" for s in STAGES.values())
    p = sub.add_parser("train", help=f"train one stage ({', '.join(STAGES)})", description=f"Stages: {stages_help}.")
    p.add_argument("stage", choices=list(STAGES))
    _add_run_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the stage's latest checkpoint")
    p.add_argument("--steps", type=_positive, default=None,
                   help="stop at this step (at most the end of the LR schedule; default: its end)")
    p.add_argument("--extend-to", type=_positive, default=None, metavar="N",
                   help="train a (finished) stage on to step N with a new LR schedule that ends at N "
                        "(recorded in its checkpoints); implies --resume")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate every generator stage of a run, or the shipped pretrained models")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--pretrained", nargs="?", const="synthfaces64", default=None, metavar="NAME",
                   help="the models shipped in pretrained/NAME (default synthfaces64): print their recorded "
                        "evaluation (with --measure: measure it again, read-only)")
    p.add_argument("--measure", action="store_true", help="with --pretrained: evaluate the shipped files now")
    p.add_argument("--record", action="store_true",
                   help="with --pretrained --measure: replace the shipped record's evaluation with this measurement "
                        "(a developer's step; the weights are not touched)")
    p.add_argument("--n", type=positive_int, default=None, help="test faces (default: the run's eval.faces)")
    p.add_argument("--edits", type=non_negative_int, default=None,
                   help="SynthFaces edit pairs per edit family (default: the run's eval.edits; 0 skips them)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, mps (default: the run's)")
    p.add_argument("--preset", default=None, choices=["smoke", "cpu", "paper"],
                   help="take the evaluation settings (the parser and eval sections) from this preset")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="config override, repeatable (e.g. --set parser.steps=600)")
    p.add_argument("--no-parser-training", action="store_true",
                   help="fail instead of training the face parser when the run has none")
    p.add_argument("--figures", action="store_true", help="also save the figures of notebook 06")
    p.add_argument("--blend", default=None, help="how edits are composited into their face (default: the kit's "
                                                 "default, see maskgan.composite); edits are also scored re-rendered")
    _add_precision(p, "fp32", "the precision the generators render in (default fp32: the recorded metrics are "
                              "fp32 and repeat on any CPU; auto: bf16 where the CPU has it)")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("compare-blends", help="every way of compositing an edit into its face, against doing "
                                              "nothing, on SynthFaces' ground-truth edits")
    p.add_argument("--run-dir", default=None, help="a trained SynthFaces run")
    p.add_argument("--pretrained", nargs="?", const="synthfaces64", default=None, metavar="NAME",
                   help="the models shipped in pretrained/NAME (default synthfaces64)")
    p.add_argument("--stage", default=None, help="comma-separated generator stages (default: every trained one)")
    p.add_argument("--edits", type=_positive, default=40, help="edit pairs per family (default 40)")
    p.add_argument("--margins", default=None, help="also sweep the default blend over these margins, e.g. 0,1,2,3")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.set_defaults(func=_cmd_compare_blends)

    p = sub.add_parser("ablation", help="p2p vs dmn vs ebst vs the equal-updates control: train what the run "
                                        "lacks, then evaluate")
    _add_run_args(p)
    p.add_argument("--n", type=positive_int, default=None, help="test faces (default: the preset's eval.faces)")
    p.add_argument("--edits", type=non_negative_int, default=None, help="edit pairs per family (default: eval.edits)")
    p.add_argument("--figures", action="store_true", help="also save the figures of notebook 06")
    p.set_defaults(func=_cmd_ablation)

    p = sub.add_parser("curves", help="learning curves: measure every kept checkpoint of a stage")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--stage", default="dmn", help="a generator stage or vae (default: dmn)")
    p.add_argument("--n", type=positive_int, default=None,
                   help="test faces (default: the run's eval.faces; vae: 200 masks)")
    p.add_argument("--edits", type=non_negative_int, default=None,
                   help="edit pairs per family (default: the run's eval.edits)")
    p.add_argument("--every", type=positive_int, default=1, help="measure every N-th kept checkpoint (and the last)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, mps (default: cpu)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override the evaluation config (e.g. --set parser.steps=2000)")
    p.set_defaults(func=_cmd_curves)

    p = sub.add_parser("study", help="the ablation over training seeds: mean +- std over evaluated runs")
    p.add_argument("--run-dir", action="append", default=None,
                   help="an evaluated run (repeat for each seed; `evaluate` writes its metrics.json)")
    p.add_argument("--train", action="store_true",
                   help="train and evaluate the study first, into --root/seed_<s> (see maskgan.evaluation.study)")
    p.add_argument("--root", default=None, help="with --train: the study's folder (default runs/<preset>)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2], help="with --train: comma-separated training seeds")
    p.add_argument("--vary-stage-one", action="store_true",
                   help="with --train: every seed trains its own stage I, baseline and dmn_matched too")
    p.add_argument("--n", type=positive_int, default=None, help="with --train: test faces")
    p.add_argument("--edits", type=non_negative_int, default=None, help="with --train: edit pairs per family")
    _add_run_args(p, run_dir=False)
    p.add_argument("--out", default=None, help="also write the study as JSON here")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("export-pretrained", help="copy a trained run's models into pretrained/NAME in float16, "
                                                "with their record and evaluation (a developer's step)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--name", required=True, help="folder under pretrained/")
    p.add_argument("--title", required=True, help="one line naming the model set")
    p.add_argument("--recipe", required=True, help="JSON file: the preset, commands and notes of the training")
    p.add_argument("--history", default=None, help="JSON file: per stage, notes on earlier training sessions")
    p.add_argument("--overwrite", action="store_true", help="replace an existing pretrained/NAME")
    p.add_argument("--n", type=positive_int, default=None, help="test faces of the recorded evaluation")
    p.add_argument("--edits", type=non_negative_int, default=None,
                   help="edit pairs per family of the recorded evaluation")
    p.set_defaults(func=_cmd_export_pretrained)

    p = sub.add_parser("synth", help="write SynthFaces to disk (prepared-folder layout)")
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=positive_int, default=128)
    p.add_argument("--train", type=non_negative_int, default=2000)
    p.add_argument("--val", type=non_negative_int, default=200)
    p.add_argument("--test", type=non_negative_int, default=200)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--workers", type=positive_int, default=1)
    p.set_defaults(func=_cmd_synth)

    from .data.celebamask import OFFICIAL_PART_SIZE
    p = sub.add_parser("prepare-celebamask", help="official CelebAMask-HQ archive -> prepared folder")
    p.add_argument("--src", required=True, help="the unpacked CelebAMask-HQ folder")
    p.add_argument("--out", required=True, help="prepared folder to create or resume")
    p.add_argument("--size", type=positive_int, default=512, help="output side in pixels (default 512)")
    p.add_argument("--workers", type=positive_int, default=4, help="parallel processes (default 4)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N images")
    p.add_argument("--on-error", default="raise", choices=["raise", "report"],
                   help="'raise': fail if any input is bad (default); 'report': skip bad faces")
    p.add_argument("--part-size", type=positive_int, default=OFFICIAL_PART_SIZE,
                   help=f"side of the part-mask PNGs (default {OFFICIAL_PART_SIZE}, the official size)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_prepare)

    try:
        from .interop.cli import register
    except ImportError:  # pragma: no cover - the interop package is part of the kit
        register = None
    if register is not None:
        register(sub)

    p = sub.add_parser("bench", help="speed benchmarks on this machine")
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.add_argument("--device", default="cpu")
    _add_precision(p, "auto", "what the render and training benchmarks measure next to fp32 (auto: bf16 where "
                              "the CPU has it; fp32: fp32 rows only)")
    p.set_defaults(func=_cmd_bench)
    return parser


def _interrupted(args, error: BaseException | None = None, argv: list[str] | None = None) -> str:
    """What a Ctrl-C leaves behind, and how to continue."""
    from .pipeline import PipelineInterrupted
    if isinstance(error, PipelineInterrupted):
        import shlex
        return error.message("python -m maskgan " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    hint = getattr(args, "_interrupt_hint", None)
    if hint is None:
        return "interrupted; everything written so far is complete (every write of the kit is atomic)."
    stage, run_dir, cfg = hint
    from .run import Run
    from .stages import get_stage
    try:
        ckpt = Run(run_dir, report=None).latest(stage)
    except MaskGANError:
        ckpt = None
    saved = f"the last checkpoint is step {ckpt.step} ({ckpt.path})" if ckpt else "no checkpoint was written yet"
    return f"interrupted: {saved}. Continue with `{get_stage(stage).command(run_dir, cfg)} --resume`."


def _output_of(args) -> str | None:
    """The folder or file the command writes (named in a message about an OS error without a file name)."""
    for key in ("run_dir", "out", "root"):
        value = getattr(args, key, None)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, str) and value:
            return value
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MaskGANError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a file where a folder belongs: the kit's error too
        if args.debug:
            raise
        print(f"error: {storage_error(e, _output_of(args))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        print(f"\n{_interrupted(args, e, argv)}", file=sys.stderr)
        return 130


#: Commands that compute with torch: a program run of them takes the free cores (maskgan.device.choose_threads).
_COMPUTING = {"train", "evaluate", "ablation", "study", "curves", "demo", "pipeline", "export-pretrained",
              "publish-figures", "import-weights", "compare-blends"}


def run(argv: list[str] | None = None) -> int:
    """The program's entry (``python -m maskgan``, the ``maskgan`` script): :func:`main`, with the CPU
    thread count taken from the free cores first for commands that compute, unless the user fixed it.
    (``main`` alone, as the tests call it, leaves the process's thread count alone.)"""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in _COMPUTING:
        from .device import choose_threads
        try:
            choose_threads()
        except MaskGANError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
