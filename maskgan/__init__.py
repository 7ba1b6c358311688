"""MaskGAN kit: a Jupyter-first reproduction of MaskGAN (Lee et al., CVPR 2020).

Importing the package is cheap and never imports torchvision (it cannot be imported against the
CPU build of torch). Submodules: :mod:`maskgan.labels` (the 19 classes), :mod:`maskgan.data`
(SynthFaces, CelebAMask-HQ), :mod:`maskgan.nn` (networks), :mod:`maskgan.losses`,
:mod:`maskgan.config` (presets ``smoke``, ``cpu``, ``paper``).
"""
__version__ = "0.1.0"
