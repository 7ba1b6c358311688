"""Prepare the official CelebAMask-HQ archive for the kit: the same command as
``python -m maskgan prepare-celebamask`` (one CLI, one set of options), runnable from a checkout.

    python data_prep/prepare_celebamask.py --src ARCHIVE_DIR --out PREPARED_DIR --size 512 --workers 4 [--limit N]

ARCHIVE_DIR holds CelebA-HQ-img/, CelebAMask-HQ-mask-anno/ and CelebA-HQ-to-CelebA-mapping.txt.
See data_prep/README.md for how to obtain it, the label order, the split rule and known pitfalls.
Exit status: 0 on success, 2 when bad input files were found (see PREPARED_DIR/prep_report.json).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import maskgan  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # run from a checkout without installing: use the repository's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskgan.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["prepare-celebamask", *sys.argv[1:]]))
