"""SynthFaces parts around the face: hair, hat, eyeglasses, earrings, necklace, neck, cloth.

Same contract as :mod:`maskgan.data.synth.parts`: each function reads its own layout fields plus the
shared face geometry and returns :class:`Piece` objects; occlusion is the renderer's job.
"""
from __future__ import annotations

import math

import numpy as np

from maskgan.data.synth.canvas import F32, Frame, Piece, Textures, coverage, ellipse_sd, lambert, pixel_centres
from maskgan.data.synth.params import Layout, Style
from maskgan.data.synth.parts import LEFT, _grain, _mix, _paint, _rgb, ear_centre

__all__ = ["hair", "hat", "glasses", "earrings", "necklace", "neck", "cloth"]


_HAIR_CY = -0.1  # centre of the hair dome, a little above the face centre


def _hair_shape(L: Layout) -> tuple[float, float, float, float]:
    """``(rx, ry, bottom, flare)`` of the hair silhouette: a dome of radii ``rx, ry`` over the
    skull, continued below its centre by sides that widen by ``flare`` per unit down to ``bottom``:
    straight to the ear tops (short), to the jaw or the brows' level (bangs bob), or flaring past
    the shoulders (long)."""
    rx, ry = 1.0 + L.hair_volume, L.face_length + 1.2 * L.hair_volume + _HAIR_CY
    if L.hairstyle == "long":
        return rx, ry, L.hair_length, 0.22
    if L.hairstyle == "bangs":
        return rx, ry, (0.85 if L.hair_over_ears else L.eye_y + 0.25), 0.05
    return rx, ry, L.eye_y + 0.12, 0.0


def _hair_outline(a, b, L: Layout):
    """Signed distance to the hair silhouette of :func:`_hair_shape`."""
    rx, ry, bottom, flare = _hair_shape(L)
    d_dome = ellipse_sd(a, b, 0.0, _HAIR_CY, rx, ry)
    width = F32(rx) + F32(flare) * np.maximum(b - F32(_HAIR_CY), F32(0.0))
    d_sides = np.maximum(np.abs(a) - width, b - F32(bottom))
    return np.where(b < F32(_HAIR_CY), d_dome, d_sides)


def hair(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Hair as two layers of one ``hair`` class: ``hair_back`` (the volume behind head, neck and
    body) and ``hair_front`` (what lies on the skull above the hairline, bangs, locks over the ears,
    long hair in front of the shoulders). Strands radiate from the crown; their brightness is a
    seeded lookup by angle, so the texture belongs to the seed, not the hairstyle."""
    if L.hairstyle == "bald":
        return []
    rx, ry, bottom, flare = _hair_shape(L)
    half_width = rx + flare * max(bottom - _HAIR_CY, 0.0)
    box = fr.box(-half_width - 0.02, _HAIR_CY - ry - 0.02, half_width + 0.02, bottom + 0.02)
    if box is None:
        return []
    a, b = fr.local(box)
    d_out = _hair_outline(a, b, L)
    # the hairline: front edge of the hair on the forehead (a wavy fringe for bangs)
    if L.hairstyle == "bangs":
        fringe = L.eye_y - L.brow_gap - 0.07
        line = F32(fringe) + F32(0.25) * a * a + F32(0.025) * np.sin(a * F32(23.0))
    else:
        line = F32(L.hairline) + F32(0.35) * a * a
    d_front = np.maximum(d_out, b - line)
    if L.hair_over_ears and L.hairstyle in ("long", "bangs"):  # curtains over the ears and cheeks
        curtain = np.maximum(F32(0.86) + F32(0.06) * b - np.abs(a), b - F32(min(bottom, 1.0)))
        d_front = np.minimum(d_front, np.maximum(d_out, curtain))
    if L.hair_front and L.hairstyle == "long":  # locks falling in front of the shoulders
        inner = F32(L.neck_width + 0.12) + F32(0.08) * np.maximum(b - F32(1.0), F32(0.0))
        d_front = np.minimum(d_front, np.maximum(d_out, np.maximum(inner - np.abs(a), F32(0.6) - b)))
    face_ry = L.face_length
    nx = np.clip(a / F32(rx), -1, 1) * F32(0.85)
    ny = np.clip((b - F32(_HAIR_CY)) / F32(face_ry), -1.0, 0.2) * F32(0.85)
    strands = tex.strand(np.arctan2(a, b + F32(face_ry * 0.55)), 0.7 * fr.size)  # about 1 strand / 1.4 px
    shade = lambert(nx, ny, light, ambient=0.5) * (F32(1.0 - S.strand) + F32(2 * S.strand) * strands)
    shade *= _grain(tex, box, 0.04) + F32(0.06) * tex.low[box]
    col = _paint(S.hair, shade)
    return [Piece("hair_back", "hair", box, coverage(d_out, fr.ppu), col * F32(0.82)),  # in shadow
            Piece("hair_front", "hair", box, coverage(d_front, fr.ppu), col)]


def hat(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """A knitted beanie (dome + cuff) or a brimmed hat (crown + brim + ribbon), label ``hat``."""
    if not L.hat:
        return []
    ry, h = L.face_length, L.hat_depth
    top = -ry - 0.5
    if L.hat_shape == "beanie":
        box = fr.box(-1.32, top - 0.02, 1.32, h + 0.08)
        if box is None:
            return []
        a, b = fr.local(box)
        d = np.maximum(ellipse_sd(a, b, 0.0, h + 0.05, 1.3, h + 0.05 - top), b - F32(h + 0.05))
        ribs = F32(0.9) + F32(0.1) * np.sin(a * F32(math.pi * 14))
        band = coverage(F32(h - 0.17) - b, fr.ppu)
        col = _mix(_paint(S.hat_color, ribs), _rgb(S.hat_color) * F32(0.8), band)
        nx, ny = a / F32(1.3) * F32(0.8), np.clip((b - F32(h)) / F32(h - top), -1, 0) * F32(0.8)
    else:
        box = fr.box(-1.8, top - 0.1, 1.8, h + 0.2)
        if box is None:
            return []
        a, b = fr.local(box)
        crown = np.maximum(ellipse_sd(a, b, 0.0, h - 0.1, 1.02, h - 0.1 - top + 0.1), b - F32(h - 0.1))
        brim = ellipse_sd(a, b, 0.0, h - 0.05, 1.75, 0.17)
        d = np.minimum(crown, brim)
        ribbon = coverage(np.abs(b - F32(h - 0.24)) - F32(0.07), fr.ppu) * (crown < 0)
        col = _mix(_paint(S.hat_color, np.ones_like(a)), S.hat_color2, ribbon)
        nx, ny = np.clip(a / F32(1.75), -1, 1) * F32(0.7), np.clip((b - F32(h)) / F32(h - top), -1, 0) * F32(0.7)
    col *= (lambert(nx, ny, light) * _grain(tex, box, 0.05))[None]
    return [Piece("hat", "hat", box, coverage(d, fr.ppu), col)]


def _rounded_box_sd(a, b, x, y, hx, hy, r):
    qx = np.abs(a - F32(x)) - F32(hx - r)
    qy = np.abs(b - F32(y)) - F32(hy - r)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0) - F32(r)


def glasses(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Eyeglasses (label ``eye_g``): two lenses in a frame, a bridge and the arms to the ears.
    The lenses are tinted glass, mostly transparent, with a faint reflection."""
    if not L.glasses:
        return []
    sz, ey, sp = L.glasses_size, L.eye_y + 0.02, L.eye_spacing
    hx, hy = (0.27 * sz, 0.27 * sz) if L.glasses_shape == "round" else (0.3 * sz, 0.2 * sz)
    box = fr.box(-1.02, ey - hy - 0.05, 1.02, ey + hy + 0.05)
    if box is None:
        return []
    a, b = fr.local(box)
    t = max(0.035, 1.2 / fr.ppu)
    if L.glasses_shape == "round":
        d_lens = ellipse_sd(np.abs(a), b, sp, ey, hx, hy)
    else:
        d_lens = _rounded_box_sd(np.abs(a), b, sp, ey, hx, hy, 0.08)
    bar = np.abs(b - F32(ey - hy * 0.4)) - F32(t / 2)
    d_bridge = np.maximum(bar, np.abs(a) - F32(sp - hx * 0.8))
    d_arms = np.maximum(bar, np.maximum(F32(sp + hx * 0.8) - np.abs(a), np.abs(a) - F32(1.0)))
    d_frame = np.minimum(np.minimum(np.abs(d_lens) - F32(t / 2), d_bridge), d_arms)
    cov = coverage(np.minimum(d_lens, d_frame), fr.ppu)
    frame = coverage(d_frame, fr.ppu)
    glint = np.clip(F32(1.0) - np.abs((np.abs(a) - F32(sp)) + (b - F32(ey)) + F32(0.08)) * F32(25.0), 0, 1)
    lens_col = _mix(_paint((0.55, 0.62, 0.7), np.ones_like(a)), (1.0, 1.0, 1.0), glint)
    col = _mix(lens_col, S.glasses_color, frame)
    alpha = cov * (F32(S.lens_tint * 0.6) + F32(0.3) * glint + frame)
    return [Piece("eye_g", "eye_g", box, cov, col, alpha=np.minimum(alpha, cov))]


def earrings(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Earrings (label ``ear_r``) hanging from both ear lobes: stud, hoop or drop."""
    if not L.earrings:
        return []
    ex, ey = ear_centre(L)
    ly = ey + L.ear_size * 0.8
    out = []
    for side in (LEFT, -LEFT):
        x = side * (ex + 0.02)
        box = fr.box(x - 0.14, ly - 0.07, x + 0.14, ly + 0.3)
        if box is None:
            continue
        a, b = fr.local(box)
        if L.earring_shape == "stud":
            d = np.sqrt((a - F32(x)) ** 2 + (b - F32(ly)) ** 2) - F32(0.05)
        elif L.earring_shape == "hoop":
            r = np.sqrt((a - F32(x)) ** 2 + (b - F32(ly + 0.1)) ** 2)
            d = np.abs(r - F32(0.1)) - F32(max(0.014, 0.6 / fr.ppu))
        else:
            d = np.minimum(np.sqrt((a - F32(x)) ** 2 + (b - F32(ly)) ** 2) - F32(0.035),
                           ellipse_sd(a, b, x, ly + 0.14, 0.045, 0.075))
        shade = lambert(np.clip((a - F32(x)) * F32(8), -1, 1) * F32(0.7), np.clip((b - F32(ly)) * F32(5), -1, 1) * F32(0.5), light, 0.45)
        out.append(Piece("ear_r", "ear_r", box, coverage(d, fr.ppu), _paint(S.metal, shade * F32(1.1))))
    return out


def necklace(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """A chain (label ``neck_l``) hanging around the neck in a U, with a small pendant."""
    if not L.necklace:
        return []
    y0, rx, drop = L.shoulder_y - 0.35, L.neck_width + 0.06, L.necklace_drop
    box = fr.box(-rx - 0.05, y0 - 0.05, rx + 0.05, y0 + drop + 0.16)
    if box is None:
        return []
    a, b = fr.local(box)
    t = max(0.022, 0.8 / fr.ppu)
    chain = np.maximum(np.abs(ellipse_sd(a, b, 0.0, y0, rx, drop)) - F32(t), F32(y0) - b)
    pendant = np.sqrt(a * a + (b - F32(y0 + drop + 0.06)) ** 2) - F32(0.055)
    d = np.minimum(chain, pendant)
    shade = F32(0.75) + F32(0.35) * tex.strand(a * F32(6.0), fr.size)
    return [Piece("neck_l", "neck_l", box, coverage(d, fr.ppu), _paint(S.metal, shade))]


def neck(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """The neck (label ``neck``), widening into the chest; shadowed under the chin."""
    nw, sy = L.neck_width, L.shoulder_y
    # The chest below the neck is skin too, but only the part inside the neckline is ever seen:
    # the widest neckline reaches nw + 0.3 and its bottom sy + 0.7, so the box stops there.
    wmax = nw + 0.45
    box = fr.box(-wmax, 0.3, wmax, sy + 0.9)
    if box is None:
        return []
    a, b = fr.local(box)
    width = F32(nw) + np.maximum(b - F32(sy - 0.25), F32(0.0)) * F32(1.6)
    d = np.maximum(np.abs(a) - np.minimum(width, F32(wmax)), F32(0.3) - b)
    shade = lambert(np.clip(a / width, -1, 1) * F32(0.75), np.zeros_like(a), light)
    shade *= F32(0.7) + F32(0.3) * np.clip((b - F32(L.face_length - 0.2)) * F32(1.6), 0, 1)
    shade *= _grain(tex, box, 0.35 * S.grain)
    return [Piece("neck", "neck", box, coverage(d, fr.ppu), _paint(S.skin, shade * F32(0.95)))]


def _pattern(S: Style, fr: Frame, box) -> np.ndarray:
    """Cloth pattern weight in [0, 1] (0 = ``cloth``, 1 = ``cloth2``), in image coordinates."""
    rows, cols = box
    pc = pixel_centres(fr.size)
    k = F32(2 * math.pi / S.pattern_period)
    ang = math.radians(S.pattern_angle)
    x = pc[cols][None, :] * k
    y = pc[rows][:, None] * k
    u = x * F32(math.cos(ang)) + y * F32(math.sin(ang))
    v = y * F32(math.cos(ang)) - x * F32(math.sin(ang))
    sharp = F32(S.pattern_period * fr.size / 4)  # about one pixel of transition
    if S.cloth_pattern == "stripes":
        s = np.sin(u)
    elif S.cloth_pattern == "checks":
        s = np.sin(u) * np.sin(v)
    else:  # dots
        s = np.sin(u) * np.sin(v) - F32(0.55)
    return np.clip(s * sharp + F32(0.5), 0, 1)


def cloth(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Clothes on the shoulders (label ``cloth``): shoulder line, a round / V / high neckline,
    and a plain, striped, checked or dotted fabric."""
    sy, sw, nw = L.shoulder_y, L.shoulder_width, L.neck_width
    bottom = 6.0 / L.scale
    top = sy - 0.4 if L.neckline == "high" else sy
    box = fr.box(-sw - 2.0, top - 0.02, sw + 2.0, bottom)
    if box is None:
        return []
    a, b = fr.local(box)
    x = np.abs(a) / F32(sw)
    line = F32(sy) + F32(0.25) * x * x + F32(0.8) * np.maximum(x - F32(0.8), F32(0.0)) ** 2 * F32(25.0)
    d = np.maximum(line - b, np.abs(a) - F32(sw * 1.02) - F32(0.35) * np.maximum(b - F32(sy), F32(0.0)))
    dep = L.neckline_depth
    if L.neckline == "round":
        d = np.maximum(d, -ellipse_sd(a, b, 0.0, sy - 0.05, nw + 0.12 + 0.3 * dep, dep + 0.05))
    elif L.neckline == "v":
        wv = nw + 0.1
        t = np.clip((b - F32(sy - 0.05)) / F32(dep * 1.6 + 0.05), 0, 1)
        d = np.maximum(d, (F32(wv) * (F32(1.0) - t) - np.abs(a)) * F32(0.8))
    else:
        collar = np.maximum(np.abs(a) - F32(nw + 0.06), F32(sy - 0.4) - b)
        d = np.minimum(d, collar)
    col = _paint(S.cloth, np.ones_like(a))
    if S.cloth_pattern != "plain":
        col = _mix(col, S.cloth2, _pattern(S, fr, box))
    shade = lambert(np.clip(a / F32(sw), -1, 1) * F32(0.6), np.full_like(a, -0.25), light, 0.6)
    col *= (shade * _grain(tex, box, 0.5 * S.grain))[None]
    return [Piece("cloth", "cloth", box, coverage(d, fr.ppu), col)]
