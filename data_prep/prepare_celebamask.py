"""Prepare the official CelebAMask-HQ archive for the kit (a thin CLI over maskgan.data.celebamask).

    python data_prep/prepare_celebamask.py --src ARCHIVE_DIR --out PREPARED_DIR --size 512 --workers 4 [--limit N]

ARCHIVE_DIR holds CelebA-HQ-img/, CelebAMask-HQ-mask-anno/ and CelebA-HQ-to-CelebA-mapping.txt.
See data_prep/README.md for how to obtain it, the label order, the split rule and known pitfalls.
Exit status: 0 on success, 1 when bad input files were found (see PREPARED_DIR/prep_report.json).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import maskgan  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # run from a checkout without installing: use the repository's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskgan.data.celebamask import OFFICIAL_PART_SIZE, PreparationError, prepare_celebamask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True, help="unpacked CelebAMask-HQ archive folder")
    parser.add_argument("--out", required=True, help="prepared folder to create or resume")
    parser.add_argument("--size", type=int, default=512, help="output side in pixels (default 512)")
    parser.add_argument("--workers", type=int, default=4, help="parallel processes (default 4)")
    parser.add_argument("--limit", type=int, default=None, help="prepare only the first N faces")
    parser.add_argument("--on-error", choices=("raise", "report"), default="raise",
                        help="'raise': exit 1 if any input is bad (default); 'report': skip bad faces, exit 0")
    parser.add_argument("--part-size", type=int, default=OFFICIAL_PART_SIZE,
                        help=f"side of the part-mask PNGs (default {OFFICIAL_PART_SIZE}, the official size)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        prepare_celebamask(args.src, args.out, size=args.size, workers=args.workers, limit=args.limit,
                           on_error=args.on_error, part_size=args.part_size, progress=not args.no_progress)
    except (PreparationError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
