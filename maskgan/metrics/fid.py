"""Fréchet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium", Eq. 6).

FID fits a Gaussian to the Inception "pool3" features of each image set and measures the Fréchet
(Wasserstein-2) distance between the two Gaussians::

    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

**Matrix square root without scipy.** Only the *trace* of ``(S_1 S_2)^(1/2)`` is needed, i.e. the
sum of the square roots of the eigenvalues of ``S_1 S_2``, and those can be read off a symmetric
matrix (all in float64, tiny negative eigenvalues from rounding clamped to 0):

* ``S_1 = L L^T`` (Cholesky, when S_1 is positive definite): ``S_1 S_2 = L (L^T S_2 L) L^-1`` is
  similar to the symmetric ``L^T S_2 L``; one ``eigvalsh``. Fast.
* ``S_1`` singular (fewer samples than dimensions): the same with ``R = S_1^(1/2)`` from
  ``eigh``, ``R S_2 R``. Slower (a 2048 x 2048 ``eigh`` takes seconds on a CPU) but exact.
* straight from features (:func:`fid_from_features` when a set has fewer samples than
  dimensions): with centred features ``A`` (n_a x D) and ``B``, ``S_1 S_2 = A^T A B^T B / c``
  (``c = (n_a - 1)(n_b - 1)``) has the same non-zero eigenvalues as ``M M^T`` with ``M = A B^T``,
  so ``Tr (S_1 S_2)^(1/2)`` is the sum of the singular values of ``M / sqrt(c)``: an n_a x n_b
  problem instead of a D x D one.

**Where the features come from.** Comparable FIDs need the exact TensorFlow Inception network
(:mod:`maskgan.metrics.inception`) with its ported weights, a 91 MB file that the kit does not
ship and never downloads by itself. :func:`fid_available` tells whether it can be found and, if
not, how to get it; :func:`fid` raises the same explanation. :func:`fid_from_features` works on
features from any extractor.

Note: FID is biased for small sets (it grows as N shrinks); compare values only at equal N, and
prefer thousands of images (the paper-standard is 50,000 or the whole test set).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ._common import check_images
from .inception import InceptionV3Features

__all__ = ["FID_WEIGHTS_FILE", "FID_WEIGHTS_URL", "WEIGHTS_ENV", "default_inception_path", "fid_available",
           "load_inception", "gaussian_stats", "frechet_distance", "fid_from_features", "inception_features", "fid"]

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
#: Environment variable that may hold the path of the weights file.
WEIGHTS_ENV = "MASKGAN_INCEPTION_WEIGHTS"


def default_inception_path() -> Path:
    """``$MASKGAN_INCEPTION_WEIGHTS`` if set, else the torch hub cache, where pytorch-fid keeps the
    file (``torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-6726825d.pth``)."""
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def _how_to_get(path: Path) -> str:
    return (f"FID needs the Inception weights ported from TensorFlow, {FID_WEIGHTS_FILE} (91 MB), expected at {path}. "
            f"On a machine with internet: download {FID_WEIGHTS_URL} (e.g. `curl -L -o {path} {FID_WEIGHTS_URL}`, "
            f"or run pytorch-fid once, which stores it there), then pass its path as weights=... or set "
            f"{WEIGHTS_ENV}=/path/to/{FID_WEIGHTS_FILE}. Without it, FID is skipped; SWD "
            f"(maskgan.metrics.sliced_wasserstein) needs no weights.")


def fid_available(weights: str | os.PathLike | None = None) -> tuple[bool, str]:
    """``(True, path)`` if the weights file exists, else ``(False, how to get it)``. Starts nothing."""
    path = Path(weights) if weights is not None else default_inception_path()
    if path.is_file():
        return True, str(path)
    return False, _how_to_get(path)


def load_inception(weights: str | os.PathLike | None = None) -> InceptionV3Features:
    """The frozen FID Inception network with weights from ``weights`` (default
    :func:`default_inception_path`); a missing file raises ``FileNotFoundError`` saying how to get it."""
    path = Path(weights) if weights is not None else default_inception_path()
    if not path.is_file():
        raise FileNotFoundError(_how_to_get(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path} is not a loadable PyTorch state dict ({e})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, expected a state dict of the FID Inception network")
    model = InceptionV3Features()
    expected = model.state_dict()
    # Files ported before BatchNorm had a batch counter lack 'num_batches_tracked': not needed here.
    missing = sorted(k for k in set(expected) - set(sd) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path} is not the FID Inception ({FID_WEIGHTS_FILE}) layout: missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]} (torchvision's inception_v3 file is a different network)")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, "
                             f"the FID Inception expects {tuple(expected[k].shape)}")
    model.load_state_dict(sd, strict=False)
    return model.freeze()


def _as_f64(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray) or np.isscalar(x):
        x = torch.from_numpy(np.asarray(x, dtype=np.float64))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    x = x.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def gaussian_stats(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` in float64 of features ``(N, D)``, N >= 2."""
    f = _as_f64(features, "features")
    if f.dim() != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2 samples, got shape {tuple(f.shape)}")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _sqrtm_psd(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def _trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """``Tr (s1 s2)^(1/2)`` for symmetric PSD ``s1``, ``s2`` (see the module docstring)."""
    chol, info = torch.linalg.cholesky_ex(s1)
    r = chol if int(info) == 0 else _sqrtm_psd(s1)  # s1 = r r^T in both cases (r symmetric in the second)
    m = r.T @ s2 @ r
    return torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module docstring).

    Means ``(D,)``, covariances ``(D, D)`` (for D = 1, scalars are accepted: variances), as torch
    tensors or numpy arrays. For 1-D Gaussians it is ``(mu1 - mu2)^2 + (s1 - s2)^2`` with standard
    deviations ``s``. Computed in float64; never negative.
    """
    mu1, mu2 = _as_f64(mu1, "mu1").reshape(-1), _as_f64(mu2, "mu2").reshape(-1)
    d = mu1.numel()
    s1, s2 = _as_f64(sigma1, "sigma1"), _as_f64(sigma2, "sigma2")
    if mu2.numel() != d:
        raise ValueError(f"mu1 and mu2 differ in dimension: {d} and {mu2.numel()}")
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if tuple(s.shape) != (d, d) and not (d == 1 and s.numel() == 1):
            raise ValueError(f"{name} must be a ({d}, {d}) covariance matrix to match the means, "
                             f"got shape {tuple(s.shape)}")
    s1, s2 = s1.reshape(d, d), s2.reshape(d, d)
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2  # exact symmetry for eigh
    dist = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * _trace_sqrt_product(s1, s2)
    return max(float(dist), 0.0)


def fid_from_features(features_a, features_b) -> float:
    """FID between two feature sets ``(N_a, D)`` and ``(N_b, D)`` (any extractor; FID proper uses
    the 2048-d Inception pool3 features of :func:`inception_features`)."""
    fa, fb = _as_f64(features_a, "features_a"), _as_f64(features_b, "features_b")
    for name, f in (("features_a", fa), ("features_b", fb)):
        if f.dim() != 2 or f.shape[0] < 2:
            raise ValueError(f"{name} must be (N, D) with N >= 2 samples, got shape {tuple(f.shape)}")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature sets differ in dimension: {fa.shape[1]} and {fb.shape[1]}")
    (na, d), nb = fa.shape, fb.shape[0]
    if min(na, nb) >= d:
        return frechet_distance(*gaussian_stats(fa), *gaussian_stats(fb))
    # Fewer samples than dimensions: work with the (n_a x n_b) cross matrix, not D x D covariances.
    a, b = fa - fa.mean(0), fb - fb.mean(0)
    m = (a @ b.T) / math.sqrt((na - 1) * (nb - 1))
    gram = m @ m.T if na <= nb else m.T @ m
    tr_covmean = torch.linalg.eigvalsh((gram + gram.T) / 2).clamp_min(0).sqrt().sum()
    dist = ((fa.mean(0) - fb.mean(0)).square().sum() + a.square().sum() / (na - 1) + b.square().sum() / (nb - 1)
            - 2 * tr_covmean)
    return max(float(dist), 0.0)


@torch.no_grad()
def inception_features(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """Features ``(N, D)`` (float64, on the CPU) of images in [-1, 1], computed in batches on the
    model's device: ``D = 2048`` pool3 features for :func:`load_inception`'s network."""
    check_images(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    feats = [model(images[i:i + batch_size].to(device).float()).double().cpu()
             for i in range(0, len(images), batch_size)]
    out = torch.cat(feats)
    if out.dim() != 2:
        raise ValueError(f"the feature extractor must return (N, D) features, got shape {tuple(out.shape)}")
    return out


def fid(images_a: torch.Tensor, images_b: torch.Tensor, weights: str | os.PathLike | None = None,
        batch_size: int = 50, device: str | torch.device | None = None,
        model: torch.nn.Module | None = None) -> float:
    """FID between two image sets in [-1, 1] (Inception pool3 features, Heusel et al. 2017).

    ``model`` reuses an already loaded :func:`load_inception` network (any module mapping images to
    ``(N, D)`` features works, e.g. for tests, but only the Inception gives FID); otherwise it is loaded from
    ``weights`` (missing file: ``FileNotFoundError`` saying how to get it; check first with
    :func:`fid_available` to skip FID gracefully). ``device`` defaults to the images' device.
    """
    if model is None:
        model = load_inception(weights)
    model = model.to(device if device is not None else images_a.device)
    return fid_from_features(inception_features(model, images_a, batch_size),
                             inception_features(model, images_b, batch_size))
