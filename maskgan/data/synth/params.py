"""SynthFaces parameters: a face is ``(Layout, Style, seed)``.

* :class:`Layout` is the geometry, i.e. everything the label map depends on: where the face is, its
  shape, the eyes, brows, nose, mouth state, hairstyle and accessories. MaskGAN edits act on the
  mask (paper Fig. 1): here an edit is a change of the layout.
* :class:`Style` is the appearance: colours, cloth pattern, background, lighting, texture
  strength. It never changes the label map.
* ``seed`` drives the fine texture (grain, hair strands).

Rendering ``(edited layout, same style, same seed)`` therefore gives the ground-truth edited image
that MaskGAN's editing can be scored against.

Lengths in a layout are in *face units*: one unit is the half-width of the face (cheek to cheek is
2 units). The face frame has its origin at the centre of the face ellipse, x to the image right and y
down. ``cx``, ``cy`` and ``scale`` place that frame in the image (fractions of the image side).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import numpy as np

from maskgan.errors import DataError
from maskgan.data.layout import SPLITS

__all__ = ["Layout", "Style", "HAIRSTYLES", "sample_layout", "sample_style", "face_params",
           "split_key", "MIN_EYE_OPEN"]

HAIRSTYLES: tuple[str, ...] = ("short", "long", "bangs", "bald")
GLASSES_SHAPES: tuple[str, ...] = ("round", "rect")
HAT_SHAPES: tuple[str, ...] = ("beanie", "brim")
EARRING_SHAPES: tuple[str, ...] = ("stud", "hoop", "drop")
NECKLINES: tuple[str, ...] = ("round", "v", "high")
CLOTH_PATTERNS: tuple[str, ...] = ("plain", "stripes", "checks", "dots")
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient")

#: Below this openness an eye is drawn as a closed lid (a lash line) and has no eye label.
MIN_EYE_OPEN = 0.12

_CHOICES = {"hairstyle": HAIRSTYLES, "glasses_shape": GLASSES_SHAPES, "hat_shape": HAT_SHAPES,
            "earring_shape": EARRING_SHAPES, "neckline": NECKLINES, "cloth_pattern": CLOTH_PATTERNS,
            "background": BACKGROUNDS}


class _Params:
    """``to_dict`` / ``from_dict`` shared by Layout and Style: plain JSON types, strict checking."""

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = [float(c) for c in v] if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        unknown = [k for k in d if k not in names]
        if missing or unknown:
            raise DataError(f"{cls.__name__}.from_dict: missing keys {missing}, unknown keys {unknown}")
        kw = {}
        for f in fields(cls):
            v = d[f.name]
            if f.type == "bool":
                if not isinstance(v, bool):
                    raise DataError(f"{cls.__name__}.{f.name} must be true/false, got {v!r}")
            elif f.type == "str":
                allowed = _CHOICES[f.name]
                if v not in allowed:
                    raise DataError(f"{cls.__name__}.{f.name} is {v!r}; expected one of {', '.join(allowed)}")
            elif f.type == "tuple":
                if not (isinstance(v, (list, tuple)) and len(v) == 3):
                    raise DataError(f"{cls.__name__}.{f.name} must be an RGB triple, got {v!r}")
                v = tuple(float(c) for c in v)
            else:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                    raise DataError(f"{cls.__name__}.{f.name} must be a finite number, got {v!r}")
                v = float(v)
            kw[f.name] = v
        return cls(**kw)

    def replace(self, **changes):
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Layout(_Params):
    """Geometry of one face (face units, see module docstring). Determines the label map."""
    # placement in the image
    cx: float              # face centre, fraction of image width
    cy: float              # face centre, fraction of image height
    scale: float           # face half-width, fraction of image side
    angle: float           # in-plane rotation, degrees (positive turns clockwise on screen)
    # face shape
    face_length: float     # half-height of the face ellipse (the half-width is 1)
    jaw: float             # 0 round .. 0.35 narrow tapering jaw
    # eyes
    eye_y: float           # height of the eye line
    eye_spacing: float     # half the distance between the eye centres
    eye_size: float        # half-width of an eye
    eye_open: float        # 0 closed .. 1 wide open
    gaze: float            # horizontal iris offset, -1 .. 1
    # brows
    brow_gap: float        # brow line above the eye line
    brow_arch: float
    brow_thick: float
    brow_tilt: float       # positive raises the outer end
    brow_len: float        # half-length
    # nose and mouth
    nose_len: float        # eye line to the nose tip
    nose_width: float      # half-width at the nostrils
    mouth_gap: float       # nose tip to the mouth line
    mouth_width: float     # half-width
    smile: float           # curvature of the mouth line: 0 neutral, 1 broad smile
    mouth_open: float      # 0 closed lips .. 1 wide open (shows the `mouth` class)
    lip_upper: float       # thickness
    lip_lower: float
    # ears, hair
    ear_size: float        # half-height of an ear
    hairstyle: str         # one of HAIRSTYLES
    hair_volume: float     # how far the hair stands off the skull
    hairline: float        # height of the forehead hairline (short / long)
    hair_length: float     # bottom of long hair (face units below the face centre)
    hair_over_ears: bool   # long hair / bangs bob falling over the ears
    hair_front: bool       # long hair falling in front of the shoulders
    # accessories
    glasses: bool
    glasses_shape: str
    glasses_size: float
    hat: bool
    hat_shape: str
    hat_depth: float       # how low the hat sits on the forehead
    earrings: bool
    earring_shape: str
    necklace: bool
    necklace_drop: float
    # body
    neck_width: float      # half-width
    shoulder_y: float      # top of the shoulders
    shoulder_width: float  # half-width
    neckline: str
    neckline_depth: float


@dataclass(frozen=True)
class Style(_Params):
    """Appearance of one face: colours (sRGB in 0..1), patterns, lighting. Never changes labels."""
    skin: tuple
    hair: tuple
    brow: tuple
    lip: tuple
    iris: tuple
    cloth: tuple
    cloth2: tuple
    cloth_pattern: str
    pattern_period: float  # fraction of the image side
    pattern_angle: float   # degrees
    background: str
    bg: tuple
    bg2: tuple
    bg_angle: float        # direction of the gradient, degrees
    light_angle: float     # direction the light comes from, degrees in the image plane
    light_strength: float  # 0 flat .. 0.6 strong side light
    glasses_color: tuple
    lens_tint: float
    hat_color: tuple
    hat_color2: tuple
    metal: tuple           # earrings and necklace
    blush: float
    grain: float           # amplitude of per-pixel noise
    strand: float          # contrast of hair strands


#: Uniform ranges of the continuous layout fields (face units unless noted).
LAYOUT_RANGES: dict[str, tuple[float, float]] = {
    "cx": (0.46, 0.54), "cy": (0.4, 0.47), "scale": (0.19, 0.245), "angle": (-10.0, 10.0),
    "face_length": (1.22, 1.42), "jaw": (0.08, 0.34),
    "eye_y": (-0.16, -0.04), "eye_spacing": (0.38, 0.46), "eye_size": (0.17, 0.22), "gaze": (-0.35, 0.35),
    "brow_gap": (0.22, 0.33), "brow_arch": (0.0, 0.08), "brow_thick": (0.055, 0.1),
    "brow_tilt": (-0.06, 0.08), "brow_len": (0.2, 0.27),
    "nose_len": (0.42, 0.56), "nose_width": (0.13, 0.2), "mouth_gap": (0.2, 0.3), "mouth_width": (0.3, 0.42),
    "lip_upper": (0.05, 0.085), "lip_lower": (0.065, 0.11), "ear_size": (0.24, 0.31),
    "hair_volume": (0.08, 0.24), "hairline": (-0.95, -0.72), "hair_length": (2.3, 3.6),
    "glasses_size": (0.9, 1.12), "hat_depth": (-0.62, -0.4), "necklace_drop": (0.35, 0.7),
    "neck_width": (0.42, 0.54), "shoulder_y": (1.6, 1.95), "shoulder_width": (2.6, 3.4),
    "neckline_depth": (0.2, 0.6),
}
_SMILE, _NEUTRAL = (0.45, 1.0), (-0.1, 0.12)
_OPEN_EYES, _CLOSED_EYES = (0.65, 1.0), (0.0, 0.25)


def _lerp(u: float, lo_hi: tuple[float, float]) -> float:
    return float(lo_hi[0] + u * (lo_hi[1] - lo_hi[0]))


def _choose(u: float, options: tuple[str, ...], p=None) -> str:
    """Option picked by a uniform number ``u`` with probabilities ``p`` (default: equal)."""
    if p is None:
        return options[min(int(u * len(options)), len(options) - 1)]
    for option, prob in zip(options, p):
        if u < prob:
            return option
        u -= prob
    return options[-1]


def sample_layout(rng: np.random.Generator) -> Layout:
    """Draw a random face geometry. Frequencies follow CelebAMask-HQ loosely: most faces have
    hair, ears are often visible, glasses / hats / earrings / necklaces are a minority.

    One vector of uniform numbers is drawn and mapped field by field (fast, and the order of the
    draws is fixed, so a given stream always gives the same face)."""
    u = iter(rng.random(len(LAYOUT_RANGES) + 18).tolist())
    kw = {name: _lerp(next(u), r) for name, r in LAYOUT_RANGES.items()}
    eyes_closed, u_eye = next(u) >= 0.9, next(u)
    kw["eye_open"] = _lerp(u_eye, _CLOSED_EYES if eyes_closed else _OPEN_EYES)
    smiling, u_smile = next(u) < 0.35, next(u)
    kw["smile"] = _lerp(u_smile, _SMILE if smiling else _NEUTRAL)
    u_open, u_amount, u_teeth = next(u), next(u), next(u)
    if u_open < 0.25:
        kw["mouth_open"] = _lerp(u_amount, (0.3, 1.0))
    elif smiling and u_teeth < 0.4:  # a smile showing the teeth
        kw["mouth_open"] = _lerp(u_amount, (0.2, 0.5))
    else:
        kw["mouth_open"] = 0.0
    kw["hairstyle"] = _choose(next(u), HAIRSTYLES, [0.36, 0.34, 0.22, 0.08])
    kw["hair_over_ears"] = next(u) < 0.6
    kw["hair_front"] = next(u) < 0.5
    kw["glasses"] = next(u) < 0.2
    kw["glasses_shape"] = _choose(next(u), GLASSES_SHAPES)
    kw["hat"] = next(u) < 0.12
    kw["hat_shape"] = _choose(next(u), HAT_SHAPES)
    kw["earrings"] = next(u) < 0.22
    kw["earring_shape"] = _choose(next(u), EARRING_SHAPES)
    kw["necklace"] = next(u) < 0.15
    kw["neckline"] = _choose(next(u), NECKLINES, [0.5, 0.3, 0.2])
    return Layout(**kw)


_SKIN_TONES = np.array([(0.98, 0.87, 0.78), (0.94, 0.77, 0.65), (0.86, 0.65, 0.51),
                        (0.72, 0.51, 0.38), (0.55, 0.36, 0.25), (0.36, 0.23, 0.16)])
_HAIR_COLORS = np.array([(0.06, 0.05, 0.05), (0.18, 0.12, 0.08), (0.36, 0.23, 0.14), (0.5, 0.23, 0.12),
                         (0.8, 0.65, 0.42), (0.9, 0.85, 0.74), (0.62, 0.61, 0.6)])
_HAIR_P = [0.3, 0.25, 0.17, 0.07, 0.12, 0.03, 0.06]
_IRIS_COLORS = np.array([(0.33, 0.19, 0.09), (0.14, 0.09, 0.06), (0.3, 0.46, 0.66), (0.3, 0.45, 0.3),
                         (0.45, 0.5, 0.55)])
_IRIS_P = [0.45, 0.2, 0.15, 0.1, 0.1]
_FRAMES = ((0.05, 0.05, 0.06), (0.35, 0.2, 0.1), (0.78, 0.66, 0.35), (0.72, 0.73, 0.76))
_GOLD, _SILVER = (0.86, 0.7, 0.32), (0.8, 0.8, 0.84)


def _hsv(h, s, v) -> tuple:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _rgb(c) -> tuple:
    return tuple(min(max(float(x), 0.0), 1.0) for x in c)


def _pick(u: float, table: np.ndarray, p) -> np.ndarray:
    """Row of ``table`` picked by a uniform number ``u`` with probabilities ``p``."""
    for row, prob in zip(table, p):
        if u < prob:
            return row
        u -= prob
    return table[-1]


def sample_style(rng: np.random.Generator) -> Style:
    """Draw a random appearance, independent of the layout (one vector of uniforms, mapped)."""
    u = iter(rng.random(48).tolist())
    n = iter(rng.normal(0.0, 1.0, 6).tolist())
    t = 5.0 * float(np.clip((next(u) + next(u) + next(u)) / 3.0 * 1.15 - 0.15, 0.0, 1.0))  # skin tone
    i = min(int(t), 4)
    skin = _SKIN_TONES[i] + (t - i) * (_SKIN_TONES[i + 1] - _SKIN_TONES[i]) + 0.02 * np.array([next(n) for _ in range(3)])
    if next(u) < 0.08:  # dyed hair
        hair = np.array(_hsv(next(u), _lerp(next(u), (0.4, 0.8)), _lerp(next(u), (0.3, 0.8))))
    else:
        hair = _pick(next(u), _HAIR_COLORS, _HAIR_P) * _lerp(next(u), (0.85, 1.12))
    brow = np.minimum(hair, 0.45) * _lerp(next(u), (0.55, 0.85)) + 0.015 * np.array([next(n) for _ in range(3)])
    red = np.array((0.85, 0.15, 0.25)) if next(u) < 0.2 else np.array((0.85, 0.38, 0.4))
    lip = skin + _lerp(next(u), (0.35, 0.65)) * (red * min(1.0, skin.max() * 1.05) - skin)

    def hsv(s_range, v_range):
        return _hsv(next(u), _lerp(next(u), s_range), _lerp(next(u), v_range))

    return Style(
        skin=_rgb(skin), hair=_rgb(hair), brow=_rgb(brow), lip=_rgb(lip),
        iris=_rgb(_pick(next(u), _IRIS_COLORS, _IRIS_P) * _lerp(next(u), (0.85, 1.15))),
        cloth=_rgb(hsv((0.05, 0.8), (0.12, 0.92))), cloth2=_rgb(hsv((0.0, 0.6), (0.3, 1.0))),
        cloth_pattern=_choose(next(u), CLOTH_PATTERNS, [0.45, 0.25, 0.15, 0.15]),
        pattern_period=_lerp(next(u), (0.03, 0.09)), pattern_angle=_lerp(next(u), (0.0, 180.0)),
        background=_choose(next(u), BACKGROUNDS, [0.35, 0.65]),
        bg=_rgb(hsv((0.0, 0.45), (0.3, 0.97))), bg2=_rgb(hsv((0.0, 0.45), (0.2, 0.97))),
        bg_angle=_lerp(next(u), (0.0, 360.0)), light_angle=_lerp(next(u), (0.0, 360.0)),
        light_strength=_lerp(next(u), (0.1, 0.6)),
        glasses_color=_FRAMES[min(int(next(u) * 4), 3)], lens_tint=_lerp(next(u), (0.0, 0.45)),
        hat_color=_rgb(hsv((0.1, 0.8), (0.15, 0.9))), hat_color2=_rgb(hsv((0.0, 0.6), (0.2, 1.0))),
        metal=_GOLD if next(u) < 0.5 else _SILVER, blush=_lerp(next(u), (0.0, 0.25)),
        grain=_lerp(next(u), (0.004, 0.018)), strand=_lerp(next(u), (0.12, 0.35)),
    )


def split_key(split: str) -> int:
    """Position of ``split`` in :data:`maskgan.data.layout.SPLITS`, with a clear error otherwise."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return SPLITS.index(split)


def _check_index(index, base_seed) -> None:
    for name, v in (("index", index), ("base_seed", base_seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise DataError(f"{name} must be a non-negative integer, got {v!r}")


def face_params(split: str, index: int, base_seed: int = 0) -> tuple[Layout, Style, int]:
    """``(layout, style, seed)`` of face ``index`` of ``split``, deterministically.

    Each face draws from its own random stream, ``SeedSequence(base_seed, spawn_key=(split,
    index))``: streams of different splits (and indices) are statistically independent, so the
    splits never share a face, and face ``i`` does not depend on how many faces came before.
    """
    _check_index(index, base_seed)
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(split_key(split), int(index)))
    rng = np.random.default_rng(ss)
    layout = sample_layout(rng)
    style = sample_style(rng)
    seed = int(rng.integers(0, 2**63 - 1))
    return layout, style, seed
