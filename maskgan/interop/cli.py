"""``python -m maskgan import-weights``: foreign weights -> the kit's files.

::

    python -m maskgan import-weights authors-generator latest_net_G.pth --run-dir runs/authors \\
        [--blender latest_net_B.pth] [--vae vae.pth] [--size 512]
    python -m maskgan import-weights bisenet 79999_iter.pth --out runs/authors        # a folder, or
    python -m maskgan import-weights bisenet 79999_iter.pth --out parsers/bisenet.safetensors
    python -m maskgan import-weights authors-unet model.pth --out runs/authors

``authors-generator`` writes a run directory (stages ``dmn`` and, with ``--vae``, ``vae``) that
``Editor.from_run`` and the notebooks load. A parser goes to ``<folder>/face_parsers/<kind>.safetensors``
(or the ``.safetensors`` file named) with a ``.json`` record of its source and label order.
Problems are :class:`maskgan.errors.WeightsImportError`; the command line prints them.

Wiring (in ``maskgan/__main__.py``): ``from .interop.cli import register; register(sub)``.
"""
from __future__ import annotations

import argparse
import json

__all__ = ["register"]

_DESCRIPTION = """Import foreign weights (nothing is downloaded; each file is checked key by key).

  authors-generator FILE --run-dir DIR [--blender FILE] [--vae FILE] [--size 512]
      the MaskGAN authors' latest_net_G.pth (+ their blender and MaskVAE) -> a run directory
      whose stages dmn (and vae) Editor.from_run and the notebooks load
  bisenet FILE --out FOLDER_OR_FILE.safetensors
      BiSeNet of zllrunning/face-parsing.PyTorch (79999_iter.pth) -> FOLDER/face_parsers/bisenet.safetensors
  authors-unet FILE --out FOLDER_OR_FILE.safetensors
      the CelebAMask-HQ authors' U-Net parser (face_parsing/model.pth) -> FOLDER/face_parsers/authors-unet.safetensors
"""


def _cmd_authors(args) -> int:
    from .authors import import_authors
    written = import_authors(args.file, args.run_dir, blender=args.blender, vae=args.vae, size=args.size)
    print(json.dumps(written, indent=2))
    print(f"\nload it with maskgan.editing.Editor.from_run({args.run_dir!r})")
    return 0


def _cmd_parser(args) -> int:
    from pathlib import Path

    from ..errors import WeightsImportError
    from .faceparsing import load_authors_parser, load_bisenet, parser_target, write_parser
    if Path(args.file).is_dir():
        raise WeightsImportError(f"weights file {args.file} is a folder; name the parser's file itself "
                                 f"({'79999_iter.pth' if args.kind == 'bisenet' else 'face_parsing/model.pth'})")
    target = parser_target(args.out, args.kind)
    if target.exists() and not args.overwrite:  # say so before reading the file
        raise WeightsImportError(f"{target} already holds an imported {args.kind} parser; pass --overwrite to "
                                 "replace it, or choose another --out")
    parser = load_bisenet(args.file) if args.kind == "bisenet" else load_authors_parser(args.file)
    print(json.dumps(write_parser(parser, args.out, overwrite=args.overwrite), indent=2))
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``import-weights`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    from ..__main__ import positive_int
    p = subparsers.add_parser(
        "import-weights", help="import foreign weights: the MaskGAN authors' networks, BiSeNet, their U-Net parser",
        description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    g = kinds.add_parser("authors-generator", help="the authors' latest_net_G.pth (+ blender, MaskVAE) -> a run directory")
    g.add_argument("file", help="their generator state dict, e.g. latest_net_G.pth")
    g.add_argument("--run-dir", required=True, help="new run directory to write (stages dmn and vae)")
    g.add_argument("--blender", default=None, help="their alpha blender state dict (define_B), saved beside the DMN")
    g.add_argument("--vae", default=None, help="their MaskVAE state dict (VAE(19, 32, 32, 1024); 512x512 only)")
    g.add_argument("--size", type=positive_int, default=512, help="image size of the run's config (default: 512)")
    g.set_defaults(func=_cmd_authors)

    for kind, help_text in (("bisenet", "BiSeNet face parser (zllrunning/face-parsing.PyTorch 79999_iter.pth)"),
                            ("authors-unet", "the CelebAMask-HQ authors' U-Net face parser (face_parsing/model.pth)")):
        q = kinds.add_parser(kind, help=help_text)
        q.add_argument("file", help="the parser's state dict")
        q.add_argument("--out", required=True,
                       help="a folder (e.g. a run directory; weights go to <out>/face_parsers/) or a .safetensors file")
        q.add_argument("--overwrite", action="store_true", help="replace a parser of this kind imported there before")
        q.set_defaults(func=_cmd_parser)
    return p
