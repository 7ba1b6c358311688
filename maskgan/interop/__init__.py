"""Foreign weights in the kit: the MaskGAN authors' networks and public CelebAMask-HQ face parsers.

* :mod:`.authors`: the authors' generator (``latest_net_G.pth``), alpha blender and MaskVAE mapped
  onto the kit's ``paper`` networks, strictly (every key accounted for), and written as a normal run
  directory (:func:`import_authors`) that :meth:`maskgan.editing.Editor.from_run` loads.
* :mod:`.faceparsing`: BiSeNet (zllrunning/face-parsing.PyTorch, ``79999_iter.pth``) and the
  CelebAMask-HQ authors' U-Net parser, returning label maps in the kit's ids.
* :mod:`.cli`: the ``import-weights`` command.

Nothing here downloads anything: every network is built from the file it is given. Files are read
with ``torch.load(..., weights_only=True)``; problems are :class:`maskgan.errors.WeightsImportError`.
"""
from .authors import (
    DROPPED_KEYS,
    authors_blender_to_kit,
    authors_generator_to_kit,
    authors_vae_to_kit,
    import_authors,
    load_authors_blender,
    load_authors_generator,
    load_authors_vae,
    read_state_dict,
)
from .faceparsing import (
    BISENET_CLASSES,
    BISENET_TO_KIT,
    ImportedParser,
    load_authors_parser,
    load_bisenet,
)

__all__ = [
    "BISENET_CLASSES",
    "BISENET_TO_KIT",
    "DROPPED_KEYS",
    "ImportedParser",
    "authors_blender_to_kit",
    "authors_generator_to_kit",
    "authors_vae_to_kit",
    "import_authors",
    "load_authors_blender",
    "load_authors_generator",
    "load_authors_parser",
    "load_authors_vae",
    "load_bisenet",
    "read_state_dict",
]
