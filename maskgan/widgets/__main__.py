"""``python -m maskgan.widgets check [RUN_DIR]``: is a run ready for the editing app, and if not, what to train.

``make app`` calls it before starting Voila, so a missing run gives a one-line instruction
instead of a page with a traceback. Exit status 0 when ready, 1 when not.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from . import DEFAULT_RUN_DIR, RUN_DIR_ENV, run_status
    parser = argparse.ArgumentParser(prog="python -m maskgan.widgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="say whether RUN_DIR has the checkpoints the app needs")
    p.add_argument("run_dir", nargs="?", default=None,
                   help=f"run directory (default: ${RUN_DIR_ENV}, else {DEFAULT_RUN_DIR})")
    args = parser.parse_args(argv)
    ready, message = run_status(args.run_dir)
    print(message, file=sys.stdout if ready else sys.stderr)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
