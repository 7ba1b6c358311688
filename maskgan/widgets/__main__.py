"""``python -m maskgan.widgets check [RUN_DIR] [--faces DIR]``: is a run ready for the editing app, and if not, what to train.

``make app`` calls it before starting Voila, so a missing run gives a one-line instruction
instead of a page with a traceback. With ``--faces DIR`` (or ``$MASKGAN_FACES``) it also reads every
file of the folder once (:meth:`maskgan.data.folder.FolderFaces.problems`) and names each one that
cannot be used.
Exit status 0 when ready, 1 when not.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from . import DEFAULT_RUN_DIR, FACES_ENV, RUN_DIR_ENV, resolve_faces, resolve_run_dir, run_status
    parser = argparse.ArgumentParser(prog="python -m maskgan.widgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="say whether RUN_DIR has the checkpoints the app needs")
    p.add_argument("run_dir", nargs="?", default=None,
                   help=f"run directory (default: ${RUN_DIR_ENV}, else {DEFAULT_RUN_DIR})")
    p.add_argument("--faces", default=None, help=f"a folder of faces to edit (default: ${FACES_ENV}, else the "
                   "run's dataset): <name>.jpg + <name>.png masks, masks/<name>.png or <name>_mask.png")
    args = parser.parse_args(argv)
    ready, message = run_status(args.run_dir)
    print(message, file=sys.stdout if ready else sys.stderr)
    folder = resolve_faces(args.faces)
    if not ready or folder is None:
        return 0 if ready else 1
    from ..errors import MaskGANError
    from ..photo import load_parser
    from ..run import Run
    from ..interop.authors import faces_resample
    run = Run(resolve_run_dir(args.run_dir), report=None)
    ckpt = run.require(run.editing_stage())
    size, resample = int(ckpt.config().data.size), faces_resample(ckpt.record())
    try:
        parser = load_parser(run.path)
    except MaskGANError:
        parser = None
    try:
        from ..photo import open_faces
        faces = open_faces(folder, size, parser=parser, resample=resample)
    except MaskGANError as e:
        print(str(e), file=sys.stderr)
        return 1
    problems = faces.problems()  # every file read once: a bad one is named here, not in the page
    if problems:
        print(f"{folder}: {len(problems)} of {len(faces)} faces cannot be used; fix or remove them:\n  "
              + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"{folder}: {len(faces)} faces at {size} px" + (f" ({len(faces.unmasked)} to parse)" if faces.unmasked else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
