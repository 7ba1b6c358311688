"""Edit families of SynthFaces: named layout changes with a ground-truth result.

MaskGAN edits a face by editing its mask (paper Fig. 1: smile, hairstyle, accessories...). Here an
edit is a change of the :class:`~maskgan.data.synth.params.Layout`; rendering the edited layout with
the *same* style and seed gives the image the edit should produce, which makes editing measurable.

Every family always yields a real change: when the sampled face does not meet an edit's
precondition (``remove_glasses`` on a face without glasses), the *original* is adjusted first (the
glasses are put on), and the pair is (adjusted original, edited).
"""
from __future__ import annotations

import numpy as np

from maskgan.errors import DataError
from maskgan.labels import CLASS_NAMES
from maskgan.data.synth.params import HAIRSTYLES, Layout, MIN_EYE_OPEN, _choose

__all__ = ["EDIT_FAMILIES", "EDIT_CLASSES", "apply_edit", "check_family"]

#: The named edit families, in a fixed order.
EDIT_FAMILIES: tuple[str, ...] = (
    "smile", "neutral", "open_mouth", "close_mouth", "close_eyes", "hairstyle",
    "add_glasses", "remove_glasses", "add_hat", "remove_hat", "move_scale",
)

_MOUTH = ("mouth", "u_lip", "l_lip")
#: Classes an edit family acts on. Pixels change only where these classes are or were, plus where
#: the label map changes as a consequence (skin showing where lips were), plus a 1-2 px border.
EDIT_CLASSES: dict[str, tuple[str, ...]] = {
    "smile": _MOUTH, "neutral": _MOUTH, "open_mouth": _MOUTH, "close_mouth": _MOUTH,
    "close_eyes": ("l_eye", "r_eye"), "hairstyle": ("hair",),
    "add_glasses": ("eye_g",), "remove_glasses": ("eye_g",), "add_hat": ("hat",), "remove_hat": ("hat",),
    "move_scale": CLASS_NAMES[1:],
}


def check_family(family: str) -> str:
    if family not in EDIT_FAMILIES:
        raise DataError(f"unknown edit family {family!r}; valid families are {', '.join(EDIT_FAMILIES)}")
    return family


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _smiling(L: Layout, rng) -> Layout:
    return L if L.smile >= 0.45 else L.replace(smile=_u(rng, 0.55, 1.0))


def _neutral(L: Layout, rng) -> Layout:
    return L.replace(smile=_u(rng, -0.05, 0.1), mouth_open=0.0)


def _opened(L: Layout, rng) -> Layout:
    return L if L.mouth_open >= 0.3 else L.replace(mouth_open=_u(rng, 0.35, 1.0))


def _with_glasses(L: Layout, rng) -> Layout:
    if L.glasses:
        return L
    return L.replace(glasses=True, glasses_shape=_choose(rng.random(), ("round", "rect")),
                     glasses_size=_u(rng, 0.9, 1.12))


def _with_hat(L: Layout, rng) -> Layout:
    if L.hat:
        return L
    return L.replace(hat=True, hat_shape=_choose(rng.random(), ("beanie", "brim")), hat_depth=_u(rng, -0.62, -0.4))


def _move_scale(L: Layout, rng) -> Layout:
    """Shift by 3-7 % of the image and rescale by 5-12 %, either way, staying in frame."""
    def shift(v, lo, hi):  # a step either way; the other way if it would leave [lo, hi]
        step = _u(rng, 0.03, 0.07) * (1 if rng.random() < 0.5 else -1)
        return v + step if lo <= v + step <= hi else v - step
    factor = _u(rng, 1.05, 1.12) if rng.random() < 0.5 else _u(rng, 0.88, 0.95)
    return L.replace(cx=shift(L.cx, 0.38, 0.62), cy=shift(L.cy, 0.34, 0.53), scale=L.scale * factor)


def _new_hairstyle(L: Layout, rng) -> Layout:
    others = tuple(h for h in HAIRSTYLES if h != L.hairstyle)
    style = _choose(rng.random(), others, [0.35, 0.35, 0.3] if L.hairstyle == "bald" else None)
    return L.replace(hairstyle=style, hair_volume=_u(rng, 0.08, 0.24), hairline=_u(rng, -0.95, -0.72),
                     hair_length=_u(rng, 2.3, 3.6), hair_over_ears=bool(rng.random() < 0.6),
                     hair_front=bool(rng.random() < 0.5))


def apply_edit(layout: Layout, family: str, rng: np.random.Generator) -> tuple[Layout, Layout]:
    """Apply edit ``family`` to ``layout``: returns ``(original, edited)``.

    ``original`` equals ``layout`` unless the precondition of the edit had to be established
    first (mouth closed before ``open_mouth``, glasses on before ``remove_glasses``, ...).
    """
    check_family(family)
    if not isinstance(layout, Layout):
        raise TypeError(f"apply_edit expects a Layout, got {type(layout).__name__}")
    L = layout
    if family == "smile":  # neutral closed mouth -> smile (sometimes showing the teeth)
        orig = _neutral(L, rng) if L.smile > 0.2 or L.mouth_open > 0 else L
        teeth = _u(rng, 0.2, 0.45) if rng.random() < 0.4 else 0.0
        return orig, orig.replace(smile=_u(rng, 0.55, 1.0), mouth_open=teeth)
    if family == "neutral":
        orig = _smiling(L, rng)
        return orig, _neutral(orig, rng)
    if family == "open_mouth":
        orig = L if L.mouth_open == 0 else L.replace(mouth_open=0.0)
        return orig, orig.replace(mouth_open=_u(rng, 0.35, 1.0))
    if family == "close_mouth":
        orig = _opened(L, rng)
        return orig, orig.replace(mouth_open=0.0)
    if family == "close_eyes":
        orig = L if L.eye_open >= 0.6 else L.replace(eye_open=_u(rng, 0.7, 1.0))
        return orig, orig.replace(eye_open=_u(rng, 0.0, MIN_EYE_OPEN * 0.5))
    if family == "hairstyle":
        return L, _new_hairstyle(L, rng)
    if family == "add_glasses":
        orig = L.replace(glasses=False)
        return orig, _with_glasses(orig, rng)
    if family == "remove_glasses":
        orig = _with_glasses(L, rng)
        return orig, orig.replace(glasses=False)
    if family == "add_hat":
        orig = L.replace(hat=False)
        return orig, _with_hat(orig, rng)
    if family == "remove_hat":
        orig = _with_hat(L, rng)
        return orig, orig.replace(hat=False)
    return L, _move_scale(L, rng)  # "move_scale"
